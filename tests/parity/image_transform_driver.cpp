// Test driver for the image codec and transforms (tests/parity/test_image_transform.py); not installed.
// Errors print `loom: error: ...` and exit 2, like the `loom` command.
//
//   image_transform_driver decode <image> <out.raw>
//       ok: int32 width, int32 height, then width*height*3 RGB bytes; failure: exit 3, the message on stdout
//   image_transform_driver crop <image> <top> <left> <height> <width> <size> <out_u8.raw> <out_f32.raw>
//       resized_crop to size x size (uint8 HWC) and its ToTensor+Normalize (float32 CHW)
//   image_transform_driver eval <image> <size> <out_u8.raw> <out_f32.raw>
//   image_transform_driver resize <image> <out_w> <out_h> <out_u8.raw>
//       the whole image resized (no crop), as PIL's img.resize((w, h), BICUBIC)
//   image_transform_driver params <width> <height> <seed> <epoch> <first> <count>
//       one line "top left height width" per sample index first..first+count-1 (train config's crops)
//   image_transform_driver bench <image.jpg> <size> <seconds>
//       decode + train transform (uint8 and float) in a loop on one thread: prints images/s
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iterator>
#include <fstream>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/data/image_codec.h"
#include "loom/data/image_transform.h"

namespace {

using namespace loom::data;

Image load(const std::string& path) {
  Image img;
  std::string err;
  if (!decode_image(path, img, &err)) loom::fail(err);
  return img;
}

void write_raw(const std::string& path, const void* data, size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), std::streamsize(n));
  if (!f) loom::fail("cannot write " + path);
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  ImageTransformConfig cfg;
  ResampleScratch scratch;
  if (mode == "decode" && argc == 4) {
    Image img;
    std::string err;
    if (!decode_image(argv[2], img, &err)) {
      std::printf("%s\n", err.c_str());
      return 3;
    }
    std::vector<uint8_t> out(8 + img.rgb.size());
    const int32_t dims[2] = {img.width, img.height};
    std::memcpy(out.data(), dims, 8);
    std::memcpy(out.data() + 8, img.rgb.data(), img.rgb.size());
    write_raw(argv[3], out.data(), out.size());
    return 0;
  }
  if (mode == "crop" && argc == 10) {
    const Image img = load(argv[2]);
    const CropBox box{std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6])};
    cfg.size = std::atoi(argv[7]);
    Image out;
    resize_bicubic(img, box, cfg.size, cfg.size, out, scratch);
    std::vector<float> f(size_t(3) * cfg.size * cfg.size);
    normalize_to_chw(out, cfg, f.data());
    write_raw(argv[8], out.rgb.data(), out.rgb.size());
    write_raw(argv[9], f.data(), f.size() * 4);
    return 0;
  }
  if (mode == "eval" && argc == 6) {
    const Image img = load(argv[2]);
    cfg.size = std::atoi(argv[3]);
    ImageTransform t(cfg);
    Image out;
    std::vector<float> f(size_t(3) * cfg.size * cfg.size);
    t.eval_uint8(img, out, scratch);
    t.eval(img, f.data(), out, scratch);
    write_raw(argv[4], out.rgb.data(), out.rgb.size());
    write_raw(argv[5], f.data(), f.size() * 4);
    return 0;
  }
  if (mode == "resize" && argc == 6) {
    const Image img = load(argv[2]);
    Image out;
    resize_bicubic(img, {0, 0, img.height, img.width}, std::atoi(argv[3]), std::atoi(argv[4]), out, scratch);
    write_raw(argv[5], out.rgb.data(), out.rgb.size());
    return 0;
  }
  if (mode == "params" && argc == 8) {
    const int w = std::atoi(argv[2]), h = std::atoi(argv[3]);
    const uint64_t seed = std::strtoull(argv[4], nullptr, 10), epoch = std::strtoull(argv[5], nullptr, 10);
    const uint64_t first = std::strtoull(argv[6], nullptr, 10), count = std::strtoull(argv[7], nullptr, 10);
    for (uint64_t i = first; i < first + count; i++) {
      const CropBox b = random_resized_crop_params(w, h, cfg, seed, epoch, i);
      std::printf("%d %d %d %d\n", b.top, b.left, b.height, b.width);
    }
    return 0;
  }
  if (mode == "bench" && argc == 5) {
    cfg.size = std::atoi(argv[3]);
    const double seconds = std::atof(argv[4]);
    ImageTransform t(cfg);
    std::ifstream f(argv[2], std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Image img, work;
    std::vector<float> out(size_t(3) * cfg.size * cfg.size);
    std::string err;
    // Thread CPU time as well as wall time: on a shared, loaded machine the wall clock counts the time
    // other processes hold the core.
    auto cpu_now = [] {
      timespec ts;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    };
    using clock = std::chrono::steady_clock;
    double t_decode = 0, t_transform = 0;
    int64_t n = 0;
    const auto start = clock::now();
    while (std::chrono::duration<double>(clock::now() - start).count() < seconds) {
      const double a = cpu_now();
      if (!decode_image_bytes(bytes.data(), bytes.size(), img, &err)) loom::fail(err);
      const double b = cpu_now();
      t.train(img, 1, 0, uint64_t(n), out.data(), work, scratch);
      t_decode += b - a;
      t_transform += cpu_now() - b;
      n++;
    }
    const double wall = std::chrono::duration<double>(clock::now() - start).count();
    std::printf("%dx%d JPEG -> %d: %.1f images/s per thread by CPU time (decode %.2f ms + crop/resize/normalize "
                "%.2f ms per image), %.1f images/s by wall clock, %lld images\n",
                img.width, img.height, cfg.size, n / (t_decode + t_transform), 1e3 * t_decode / n,
                1e3 * t_transform / n, n / wall, (long long)n);
    return 0;
  }
  loom::fail("usage: image_transform_driver decode|crop|eval|resize|params|bench ... (see the source)");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const loom::UserError& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
