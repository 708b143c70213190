#pragma once
// JPEG (libjpeg-turbo) and PNG (libpng) decoding into 8-bit RGB, and encoding for the synthetic set
// and the tests. The decoder picks the format by the file's magic bytes, never by its name, and turns
// grey, grey+alpha, palette, RGBA and 16-bit images into RGB the way PIL's Image.convert("RGB") does
// (alpha dropped, not composited; 16-bit samples reduced to their high byte). A missing, truncated or
// corrupt file is a false return with a message naming the path and the fault: libjpeg's error_exit
// is routed through setjmp so a bad file never ends the process (the frames that call setjmp hold no
// object the jump could leave indeterminate or undestroyed).
// Memory a hostile file can take: the pixel limit bounds the output (3 bytes a pixel) and libjpeg's
// whole-image coefficient buffers (8 bytes a pixel); a JPEG's output grows with the rows it actually
// decodes and a PNG whose compressed data cannot hold the size its header claims (deflate expands at
// most 1032-fold) is refused before allocating, so a small truncated file cannot take much either.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loom::data {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height x width x 3, row-major
};

// Decodes `path` into `out` (resized to fit). On failure returns false, leaves `out` unspecified and,
// when `error` is non-null, sets it to "<path>: <what is wrong>".
bool decode_image(const std::string& path, Image& out, std::string* error);
// The same from memory; the message names "<memory>" instead of a path. `max_pixels` (default PIL's
// limit, kMaxImagePixels) lowers the size limit (the fuzz target keeps its allocations small with it).
constexpr uint64_t kMaxImagePixels = 2ull * 89'478'485;
bool decode_image_bytes(const uint8_t* data, size_t size, Image& out, std::string* error,
                        uint64_t max_pixels = kMaxImagePixels);

// Encode `img` (which must hold width*height*3 bytes). Written atomically; throw UserError on failure.
void write_jpeg(const std::string& path, const Image& img, int quality);  // 4:2:0, libjpeg defaults
void write_png(const std::string& path, const Image& img);

}  // namespace loom::data
