// JPEG / PNG images of an image-text index (what the loader decodes, image_codec.h): the input is the
// image file. It is decoded with a pixel limit of 2^20 (the real limit is PIL's 178,956,970; the lower one
// keeps each input's allocations, which the limit bounds, far under -malloc_limit_mb) and, when it
// decodes, the result must be a width x height x 3 buffer. A corrupt file must be a false return with a
// message: libjpeg's and libpng's fatal errors jump back through setjmp, never exit() or abort().
#include "fuzz_util.h"
#include "loom/data/image_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  data::Image img;
  std::string error;
  constexpr uint64_t kLimit = 1u << 20;
  if (data::decode_image_bytes(data, size, img, &error, kLimit)) {
    if (img.width <= 0 || img.height <= 0 || uint64_t(img.width) * uint64_t(img.height) > kLimit ||
        img.rgb.size() != size_t(img.width) * size_t(img.height) * 3 || !error.empty())
      std::abort();
  } else if (error.rfind("<memory>: ", 0) != 0 || error.size() <= 10) {
    std::abort();  // a failure always says what is wrong
  }
  return 0;
}
