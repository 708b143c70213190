// JPEG via libjpeg-turbo's libjpeg API, PNG via libpng's simplified-free classic API, both with their
// fatal-error paths redirected to setjmp so that a corrupt file is a false return, not an exit().
#include "loom/data/image_codec.h"

#include <png.h>
#include <setjmp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "loom/core/error.h"
#include "loom/data/files.h"

namespace loom::data {
namespace {

// PIL's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS raises): a header claiming more pixels is an
// error before anything is allocated, so a hostile file cannot take the loader's memory.
constexpr uint64_t kMaxPixels = kMaxImagePixels;

std::string too_large(uint64_t w, uint64_t h, uint64_t limit) {
  return "image too large (" + std::to_string(w) + "x" + std::to_string(h) + " pixels, the limit is " +
         std::to_string(limit) + ")";
}

bool set_error(std::string* error, const std::string& where, const std::string& what) {
  if (error) *error = where + ": " + what;
  return false;
}

// ---- JPEG ------------------------------------------------------------------------------------------

struct JpegErr {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int warnings = 0;
};

void jpeg_error_exit_to_jump(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

// libjpeg reports a truncated stream as a warning (JWRN_JPEG_EOF) and pads with grey; PIL raises
// "image file is truncated" for it, so a premature end is an error here too. Other warnings (extraneous
// bytes before a marker) PIL ignores, and so do we.
void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0) {
    auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
      (*cinfo->err->format_message)(cinfo, e->message);
      longjmp(e->jump, 1);
    }
    e->warnings++;
  }
}

// Everything the error jump may cross lives here, in the caller's frame: the function that calls setjmp
// keeps no automatic object that changes after it (C's setjmp rule) or has a destructor (C++'s), so the
// jump back from inside libjpeg is defined behaviour.
struct JpegDecode {
  jpeg_decompress_struct cinfo;
  JpegErr err;
  std::vector<uint8_t> cmyk;
  uint64_t max_pixels = 0;
  std::string refused;  // a refusal of ours (not libjpeg's), set before returning false
};

// The output grows with the rows actually decoded, so a tiny truncated file whose header claims a large
// image fails at its end having allocated little. A jump out of libjpeg returns false with err.message set.
bool jpeg_decode_into(JpegDecode& d, const uint8_t* data, size_t size, Image& out) {
  if (setjmp(d.err.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  // libjpeg's whole-image buffers (progressive and multi-scan files keep every DCT coefficient, 2 bytes
  // each per component sample) get at most 8 bytes per allowed pixel; more is JERR_NO_BACKING_STORE.
  d.cinfo.mem->max_memory_to_use = long(8 * d.max_pixels + (16 << 20));
  jpeg_mem_src(&d.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&d.cinfo, TRUE);
  // PIL decodes with libjpeg's defaults (islow DCT, fancy upsampling) and converts CMYK itself.
  const bool is_cmyk = d.cinfo.jpeg_color_space == JCS_CMYK || d.cinfo.jpeg_color_space == JCS_YCCK;
  d.cinfo.out_color_space = is_cmyk ? JCS_CMYK : JCS_RGB;
  if (uint64_t(d.cinfo.image_width) * d.cinfo.image_height > d.max_pixels) {
    d.refused = too_large(d.cinfo.image_width, d.cinfo.image_height, d.max_pixels);
    return false;
  }
  jpeg_start_decompress(&d.cinfo);
  const size_t w = d.cinfo.output_width, h = d.cinfo.output_height, row_bytes = w * 3;
  out.width = int(w);
  out.height = int(h);
  out.rgb.clear();
  if (is_cmyk) d.cmyk.resize(w * 4);
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    const size_t y = d.cinfo.output_scanline;
    if (out.rgb.size() < (y + 1) * row_bytes) {
      // Doubling, then the whole image once an eighth of it is there (the copy costs at most 1/8 more).
      size_t rows = std::max<size_t>(2 * y, 16);
      if (rows * 8 >= h) rows = h;
      out.rgb.resize(rows * row_bytes);
    }
    JSAMPROW row = is_cmyk ? d.cmyk.data() : &out.rgb[y * row_bytes];
    jpeg_read_scanlines(&d.cinfo, &row, 1);
    if (is_cmyk) {
      // PIL always unpacks JPEG CMYK as inverted ("CMYK;I", Adobe's convention) and converts with
      // r = nk - round(c * nk / 255), nk = 255 - k (Convert.c's cmyk2rgb and its MULDIV255).
      uint8_t* dst = &out.rgb[y * row_bytes];
      for (size_t x = 0; x < w; x++) {
        const int nk = d.cmyk[4 * x + 3];  // 255 - k after the inversion
        for (int c = 0; c < 3; c++) {
          const int v = 255 - d.cmyk[4 * x + c];
          const int t = v * nk + 128;
          dst[3 * x + c] = static_cast<uint8_t>(nk - (((t >> 8) + t) >> 8));
        }
      }
    }
  }
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

bool decode_jpeg(const uint8_t* data, size_t size, Image& out, std::string* error, const std::string& where,
                 uint64_t max_pixels) {
  JpegDecode d;
  d.cinfo.err = jpeg_std_error(&d.err.mgr);
  d.err.mgr.error_exit = jpeg_error_exit_to_jump;
  d.err.mgr.emit_message = jpeg_emit_message;
  d.err.message[0] = 0;
  d.max_pixels = max_pixels;
  const bool ok = jpeg_decode_into(d, data, size, out);
  const bool no_memory = d.err.mgr.msg_code == JERR_NO_BACKING_STORE;
  jpeg_destroy_decompress(&d.cinfo);
  if (ok) return true;
  if (!d.refused.empty()) return set_error(error, where, d.refused);
  if (no_memory)
    return set_error(error, where, "JPEG needs more decoder memory than " + std::to_string(8 * max_pixels + (16 << 20)) +
                                       " bytes (8 per pixel of the limit)");
  return set_error(error, where, std::string("corrupt or truncated JPEG: ") + d.err.message);
}

// ---- PNG -------------------------------------------------------------------------------------------

struct PngReader {
  const uint8_t* data;
  size_t size, pos;
  char message[256];
};

void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->size - r->pos < n) png_error(png, "unexpected end of file (truncated)");
  std::memcpy(dst, r->data + r->pos, n);
  r->pos += n;
}

void png_error_to_jump(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  std::snprintf(r->message, sizeof r->message, "%s", msg);
  png_longjmp(png, 1);
}

void png_warning_ignored(png_structp, png_const_charp) {}

// The compressed image's size: the lengths of the IDAT chunks (as far as they are present), walking the
// chunk list; a malformed list ends the walk (libpng reports it).
uint64_t png_idat_bytes(const uint8_t* data, size_t size) {
  uint64_t total = 0;
  for (size_t pos = 8; size - pos >= 12;) {
    const uint32_t len = (uint32_t(data[pos]) << 24) | (uint32_t(data[pos + 1]) << 16) | (uint32_t(data[pos + 2]) << 8) |
                         uint32_t(data[pos + 3]);
    const char* type = reinterpret_cast<const char*>(data + pos + 4);
    if (std::memcmp(type, "IDAT", 4) == 0) total += std::min<uint64_t>(len, size - pos - 8);
    if (std::memcmp(type, "IEND", 4) == 0 || len > size - pos - 12) break;
    pos += 12 + size_t(len);
  }
  return total;
}

// As JpegDecode: the state the error jump crosses, kept out of the frame that calls setjmp.
struct PngDecode {
  PngReader reader;
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<png_bytep> rows;
  std::vector<uint8_t> buf;
  uint64_t max_pixels = 0;
  std::string refused;
  png_uint_32 w = 0, h = 0;
  size_t rowbytes = 0;
  bool grey16 = false;
};

bool png_decode_into(PngDecode& d) {
  if (setjmp(png_jmpbuf(d.png))) return false;
  png_set_read_fn(d.png, &d.reader, png_read_mem);
  // PIL checks CRCs of critical chunks and ignores those of ancillary ones; so does libpng by default.
  png_read_info(d.png, d.info);
  const int bit_depth = png_get_bit_depth(d.png, d.info);
  const int color = png_get_color_type(d.png, d.info);
  d.w = png_get_image_width(d.png, d.info);
  d.h = png_get_image_height(d.png, d.info);
  if (uint64_t(d.w) * d.h > d.max_pixels) {
    d.refused = too_large(d.w, d.h, d.max_pixels);
    return false;
  }
  // Deflate expands a byte into at most 1032 (two-bit codes for 258-byte matches): image data too small
  // for the header's size is a truncated file, refused before the pixel buffer is allocated.
  const uint64_t raw_bits = uint64_t(d.w) * d.h * png_get_channels(d.png, d.info) * uint64_t(bit_depth);
  const uint64_t idat = png_idat_bytes(d.reader.data, d.reader.size);
  if (raw_bits / 8 > 1032 * idat + 4096) {
    d.refused = "corrupt or truncated PNG: " + std::to_string(idat) + " bytes of image data cannot hold " +
                std::to_string(d.w) + "x" + std::to_string(d.h) + " pixels";
    return false;
  }
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(d.png);
  if (color == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(d.png);
  // tRNS only marks transparency; convert("RGB") drops it, so it is not expanded into an alpha channel.
  const bool grey = !(color & PNG_COLOR_MASK_COLOR);
  if (bit_depth == 16) {
    if (grey) {
      // PIL opens 16-bit grey as mode "I" and its I -> RGB conversion clips each value to 255; keep the
      // 16 bits (big-endian) and clip below.
    } else {
      png_set_strip_16(d.png);  // PIL's "RGB;16B"/"RGBA;16B" unpackers keep the high byte
    }
  }
  // Palette expansion turns a tRNS chunk into an alpha channel; strip it too (a no-op without alpha).
  png_set_strip_alpha(d.png);
  d.grey16 = grey && bit_depth == 16;
  if (grey && !d.grey16) png_set_gray_to_rgb(d.png);
  png_set_interlace_handling(d.png);
  png_read_update_info(d.png, d.info);
  d.rowbytes = png_get_rowbytes(d.png, d.info);
  d.buf.resize(d.rowbytes * d.h);
  d.rows.resize(d.h);
  for (png_uint_32 y = 0; y < d.h; y++) d.rows[y] = d.buf.data() + y * d.rowbytes;
  png_read_image(d.png, d.rows.data());
  png_read_end(d.png, nullptr);
  return true;
}

bool decode_png(const uint8_t* data, size_t size, Image& out, std::string* error, const std::string& where,
                uint64_t max_pixels) {
  PngDecode d;
  d.reader = PngReader{data, size, 0, {0}};
  d.max_pixels = max_pixels;
  d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d.reader, png_error_to_jump, png_warning_ignored);
  if (!d.png) return set_error(error, where, "out of memory");
  d.info = png_create_info_struct(d.png);
  if (!d.info) {
    png_destroy_read_struct(&d.png, nullptr, nullptr);
    return set_error(error, where, "out of memory");
  }
  const bool ok = png_decode_into(d);
  png_destroy_read_struct(&d.png, &d.info, nullptr);
  if (!d.refused.empty()) return set_error(error, where, d.refused);
  if (!ok) return set_error(error, where, std::string("corrupt or truncated PNG: ") + d.reader.message);
  const size_t w = d.w, h = d.h;
  out.width = int(w);
  out.height = int(h);
  if (d.grey16) {
    out.rgb.resize(w * h * 3);
    for (size_t i = 0; i < w * h; i++) {
      const int v = (d.buf[2 * i] << 8) | d.buf[2 * i + 1];
      const uint8_t c = static_cast<uint8_t>(v > 255 ? 255 : v);
      out.rgb[3 * i] = out.rgb[3 * i + 1] = out.rgb[3 * i + 2] = c;
    }
  } else {
    if (d.rowbytes != w * 3) return set_error(error, where, "unsupported PNG layout");
    out.rgb = std::move(d.buf);
  }
  return true;
}

bool decode_any(const uint8_t* data, size_t size, Image& out, std::string* error, const std::string& where,
                uint64_t max_pixels = kMaxPixels) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return decode_jpeg(data, size, out, error, where, max_pixels);
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return decode_png(data, size, out, error, where, max_pixels);
  if (size == 0) return set_error(error, where, "empty file, not an image");
  return set_error(error, where, "not a JPEG or PNG file (unrecognised header)");
}

void check_image(const Image& img, const std::string& path) {
  require(img.width > 0 && img.height > 0 && img.rgb.size() == size_t(img.width) * img.height * 3,
          "cannot write image '" + path + "': its pixel buffer does not match " + std::to_string(img.width) +
              "x" + std::to_string(img.height));
}

void write_mem_png(png_structp png, png_bytep src, png_size_t n) {
  auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  v->insert(v->end(), src, src + n);
}
void flush_noop(png_structp) {}
void png_write_error(png_structp png, png_const_charp msg) {
  (void)msg;
  png_longjmp(png, 1);
}

}  // namespace

bool decode_image_bytes(const uint8_t* data, size_t size, Image& out, std::string* error, uint64_t max_pixels) {
  return decode_any(data, size, out, error, "<memory>", max_pixels);
}

bool decode_image(const std::string& path, Image& out, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return set_error(error, path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes;
  struct stat st = {};
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::fclose(f);
    return set_error(error, path, "is a directory, not an image");
  }
  if (st.st_size > 0) bytes.reserve(size_t(st.st_size));
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) return set_error(error, path, "read error");
  return decode_any(bytes.data(), bytes.size(), out, error, path);
}

void write_jpeg(const std::string& path, const Image& img, int quality) {
  check_image(img, path);
  require(quality >= 1 && quality <= 100, "JPEG quality must be in 1..100");
  jpeg_compress_struct cinfo;
  JpegErr err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit_to_jump;
  unsigned char* mem = nullptr;
  unsigned long mem_size = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    std::free(mem);
    fail("cannot encode JPEG '" + path + "': " + err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &mem, &mem_size);
  cinfo.image_width = JDIMENSION(img.width);
  cinfo.image_height = JDIMENSION(img.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&img.rgb[size_t(cinfo.next_scanline) * img.width * 3]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::vector<uint8_t> bytes(mem, mem + mem_size);
  std::free(mem);
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

void write_png(const std::string& path, const Image& img) {
  check_image(img, path);
  std::vector<uint8_t> bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_write_error, png_warning_ignored);
  require(png != nullptr, "cannot encode PNG '" + path + "': out of memory");
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows(size_t(img.height));
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fail("cannot encode PNG '" + path + "'");
  }
  png_set_write_fn(png, &bytes, write_mem_png, flush_noop);
  png_set_IHDR(png, info, png_uint_32(img.width), png_uint_32(img.height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  for (int y = 0; y < img.height; y++) rows[size_t(y)] = const_cast<uint8_t*>(&img.rgb[size_t(y) * img.width * 3]);
  png_set_rows(png, info, rows.data());
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace loom::data
