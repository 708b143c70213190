// Image codec and transform plumbing (the PIL/torchvision parity is tests/parity/test_image_transform.py):
// lossless PNG round trip, JPEG round trip, every truncation and random corruption of a file is a
// false return with a message (never a crash: this also runs under ASan), writer errors, the eval
// window equal to the same pixels of the full resize, and the synthetic scenes' captions.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <zlib.h>

#include "loom/core/error.h"
#include "loom/core/rng.h"
#include "loom/data/image_codec.h"
#include "loom/data/image_transform.h"
#include "loom/data/synthetic_images.h"

namespace fs = std::filesystem;
using namespace loom::data;

namespace {

Image pattern(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  loom::Rng rng(7);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        img.rgb[(size_t(y) * w + x) * 3 + c] = uint8_t((x * 5 + y * 3 + c * 80 + (rng.next_u32() & 15)) & 255);
  return img;
}

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct TmpDir {
  fs::path path = fs::temp_directory_path() / ("loom_image_codec_" + std::to_string(::getpid()));
  TmpDir() { fs::create_directories(path); }
  ~TmpDir() { fs::remove_all(path); }
};

}  // namespace

TEST(ImageCodec, PngRoundTripIsLossless) {
  TmpDir d;
  const Image img = pattern(37, 23);
  const std::string p = (d.path / "a.png").string();
  write_png(p, img);
  Image back;
  std::string err;
  ASSERT_TRUE(decode_image(p, back, &err)) << err;
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 23);
  EXPECT_EQ(back.rgb, img.rgb);
}

TEST(ImageCodec, JpegRoundTripIsClose) {
  TmpDir d;
  Image img;  // smooth (JPEG's 4:2:0 chroma and quantisation keep it close)
  img.width = 64;
  img.height = 48;
  for (int y = 0; y < 48; y++)
    for (int x = 0; x < 64; x++)
      for (int c = 0; c < 3; c++) img.rgb.push_back(uint8_t(30 + 2 * x + y + 40 * c));
  const std::string p = (d.path / "a.jpg").string();
  write_jpeg(p, img, 100);
  Image back;
  std::string err;
  ASSERT_TRUE(decode_image(p, back, &err)) << err;
  ASSERT_EQ(back.rgb.size(), img.rgb.size());
  double sum = 0;
  for (size_t i = 0; i < img.rgb.size(); i++) sum += std::abs(int(back.rgb[i]) - int(img.rgb[i]));
  EXPECT_LT(sum / double(img.rgb.size()), 1.5);
}

TEST(ImageCodec, EveryTruncationAndCorruptionFailsCleanly) {
  TmpDir d;
  const Image img = pattern(40, 30);
  write_jpeg((d.path / "a.jpg").string(), img, 90);
  write_png((d.path / "a.png").string(), img);
  for (const char* name : {"a.jpg", "a.png"}) {
    const std::vector<uint8_t> bytes = slurp((d.path / name).string());
    Image out;
    for (size_t n = 0; n < bytes.size(); n += (n < 64 ? 1 : 13)) {
      std::string err;
      EXPECT_FALSE(decode_image_bytes(bytes.data(), n, out, &err)) << name << " cut at " << n;
      EXPECT_EQ(err.rfind("<memory>: ", 0), 0u) << err;
    }
    // Random byte corruption: decodes or fails, but never crashes or overruns (ASan).
    loom::Rng rng(11);
    for (int trial = 0; trial < 200; trial++) {
      std::vector<uint8_t> bad = bytes;
      for (int k = 0; k < 4; k++) bad[rng.next_u32() % bad.size()] ^= uint8_t(1 + rng.next_u32() % 255);
      std::string err;
      if (!decode_image_bytes(bad.data(), bad.size(), out, &err)) {
        EXPECT_FALSE(err.empty());
      } else {
        EXPECT_EQ(out.rgb.size(), size_t(out.width) * out.height * 3);
      }
    }
  }
}

// A header that claims more pixels than PIL's decompression-bomb limit fails before any allocation.
TEST(ImageCodec, HugeHeaderIsRefused) {
  TmpDir d;
  const Image img = pattern(16, 16);
  write_jpeg((d.path / "a.jpg").string(), img, 90);
  write_png((d.path / "a.png").string(), img);
  std::vector<uint8_t> jpg = slurp((d.path / "a.jpg").string());
  size_t sof = 0;
  for (size_t i = 2; i + 9 < jpg.size(); i++)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      sof = i;
      break;
    }
  ASSERT_GT(sof, 0u);
  for (int k : {5, 7}) {  // height, then width: 60000 each, big-endian
    jpg[sof + k] = 60000 >> 8;
    jpg[sof + k + 1] = 60000 & 255;
  }
  Image out;
  std::string err;
  EXPECT_FALSE(decode_image_bytes(jpg.data(), jpg.size(), out, &err));
  EXPECT_EQ(err, "<memory>: image too large (60000x60000 pixels, the limit is 178956970)");
  std::vector<uint8_t> png = slurp((d.path / "a.png").string());
  // IHDR data at bytes 16..28 (width, height big-endian), its CRC at 29..32 over type + data.
  for (int k : {16, 20}) {
    png[k] = 0;
    png[k + 1] = 0;
    png[k + 2] = 60000 >> 8;
    png[k + 3] = 60000 & 255;
  }
  const uint32_t crc = uint32_t(crc32(0, png.data() + 12, 17));
  for (int k = 0; k < 4; k++) png[29 + k] = uint8_t(crc >> (24 - 8 * k));
  EXPECT_FALSE(decode_image_bytes(png.data(), png.size(), out, &err));
  EXPECT_EQ(err, "<memory>: image too large (60000x60000 pixels, the limit is 178956970)");
}

// Peak resident memory (bytes) of a child process that runs f, above this process's resident size now.
template <class F>
long child_peak_above_now(F&& f) {
  long pages = 0, resident = 0;
  if (std::FILE* st = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(st, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(st);
  }
  const pid_t pid = fork();
  if (pid == 0) {
    f();
    _exit(0);
  }
  int status = 0;
  struct rusage ru = {};
  EXPECT_EQ(wait4(pid, &status, 0, &ru), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return ru.ru_maxrss * 1024 - resident * sysconf(_SC_PAGESIZE);
}

// Found by fuzz_image_codec's review: a few hundred bytes whose header claims a large image (under the pixel
// limit) made the decoder allocate and zero the whole output before finding the data missing. A
// truncated JPEG now allocates only the rows it decodes (one with its end marker is decoded, as PIL does), and a PNG whose compressed data cannot hold the
// claimed size is refused before any pixel buffer (deflate expands at most 1032-fold).
TEST(ImageCodec, SmallFileClaimingLargeImageTakesLittleMemory) {
  TmpDir d;
  const Image img = pattern(16, 16);
  write_jpeg((d.path / "a.jpg").string(), img, 90);
  write_png((d.path / "a.png").string(), img);
  std::vector<uint8_t> jpg = slurp((d.path / "a.jpg").string());
  size_t sof = 0;
  for (size_t i = 2; i + 9 < jpg.size(); i++)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      sof = i;
      break;
    }
  ASSERT_GT(sof, 0u);
  for (int k : {5, 7}) {  // height, then width: 12000 each (144M pixels, under the limit), big-endian
    jpg[sof + k] = 12000 >> 8;
    jpg[sof + k + 1] = 12000 & 255;
  }
  jpg.resize(jpg.size() - 16);  // cut inside the scan: no end-of-image marker
  Image out;
  std::string err;
  EXPECT_FALSE(decode_image_bytes(jpg.data(), jpg.size(), out, &err));
  EXPECT_EQ(err.rfind("<memory>: corrupt or truncated JPEG: ", 0), 0u) << err;
  // The whole output would be 432 MB.
  EXPECT_LT(child_peak_above_now([&] {
              Image o;
              decode_image_bytes(jpg.data(), jpg.size(), o, nullptr);
            }),
            100l << 20);

  std::vector<uint8_t> png = slurp((d.path / "a.png").string());
  for (int k : {16, 20}) {  // IHDR width, height: 12000
    png[k] = 0;
    png[k + 1] = 0;
    png[k + 2] = 12000 >> 8;
    png[k + 3] = 12000 & 255;
  }
  const uint32_t crc = uint32_t(crc32(0, png.data() + 12, 17));
  for (int k = 0; k < 4; k++) png[29 + k] = uint8_t(crc >> (24 - 8 * k));
  EXPECT_FALSE(decode_image_bytes(png.data(), png.size(), out, &err));
  EXPECT_NE(err.find("<memory>: corrupt or truncated PNG: "), std::string::npos) << err;
  EXPECT_NE(err.find(" bytes of image data cannot hold 12000x12000 pixels"), std::string::npos) << err;
  EXPECT_LT(child_peak_above_now([&] {
              Image o;
              decode_image_bytes(png.data(), png.size(), o, nullptr);
            }),
            100l << 20);
}

// A lower pixel limit (what the fuzz target uses) refuses with that limit named; libjpeg's whole-image
// buffers are capped by it too.
TEST(ImageCodec, LowerPixelLimit) {
  TmpDir d;
  const Image img = pattern(40, 30);
  write_png((d.path / "a.png").string(), img);
  write_jpeg((d.path / "a.jpg").string(), img, 90);
  for (const char* name : {"a.png", "a.jpg"}) {
    const std::vector<uint8_t> bytes = slurp((d.path / name).string());
    Image out;
    std::string err;
    EXPECT_FALSE(decode_image_bytes(bytes.data(), bytes.size(), out, &err, 1199)) << name;
    EXPECT_EQ(err, "<memory>: image too large (40x30 pixels, the limit is 1199)") << name;
    EXPECT_TRUE(decode_image_bytes(bytes.data(), bytes.size(), out, &err, 1200)) << name << err;
    EXPECT_EQ(out.rgb.size(), 40u * 30 * 3);
  }
}

TEST(ImageCodec, MissingFileAndWriterErrors) {
  Image out;
  std::string err;
  EXPECT_FALSE(decode_image("/nonexistent/x.jpg", out, &err));
  EXPECT_EQ(err, "/nonexistent/x.jpg: cannot open: No such file or directory");
  const Image img = pattern(8, 8);
  EXPECT_THROW(write_jpeg("/nonexistent/dir/x.jpg", img, 90), loom::UserError);
  EXPECT_THROW(write_png("/nonexistent/dir/x.png", img), loom::UserError);
  Image broken = img;
  broken.rgb.pop_back();
  EXPECT_THROW(write_png("/tmp/never.png", broken), loom::UserError);
  EXPECT_FALSE(fs::exists("/tmp/never.png"));
}

TEST(ImageTransform, WindowEqualsTheSamePixelsOfTheFullResize) {
  const Image img = pattern(77, 51);
  ResampleScratch s;
  Image full, win;
  const CropBox whole{0, 0, 51, 77};
  resize_bicubic(img, whole, 90, 60, full, s);
  resize_bicubic_window(img, whole, 90, 60, 13, 7, 40, 33, win, s);
  for (int y = 0; y < 33; y++)
    for (int x = 0; x < 40; x++)
      for (int c = 0; c < 3; c++)
        ASSERT_EQ(win.rgb[(size_t(y) * 40 + x) * 3 + c], full.rgb[(size_t(y + 7) * 90 + x + 13) * 3 + c]);
  // Same size: no filtering at all (Pillow copies).
  Image same;
  resize_bicubic(img, {3, 4, 20, 30}, 30, 20, same, s);
  for (int y = 0; y < 20; y++)
    for (int x = 0; x < 30 * 3; x++) ASSERT_EQ(same.rgb[size_t(y) * 90 + x], img.rgb[size_t(y + 3) * 77 * 3 + 12 + x]);
  EXPECT_THROW(resize_bicubic(img, {0, 0, 52, 77}, 10, 10, same, s), loom::UserError);
}

TEST(ImageTransform, TorchvisionRounding) {
  EXPECT_EQ(shorter_side_resize(500, 375, 224), (std::pair<int, int>{298, 224}));  // int(224 * 500 / 375) = 298
  EXPECT_EQ(shorter_side_resize(333, 517, 224), (std::pair<int, int>{224, 347}));
  EXPECT_EQ(center_crop_offset(225, 224), 0);  // round(0.5) = 0 (half to even)
  EXPECT_EQ(center_crop_offset(227, 224), 2);  // round(1.5) = 2
  EXPECT_EQ(center_crop_offset(298, 224), 37);
}

TEST(SyntheticImages, CaptionsFollowTheScene) {
  SyntheticScene sc;
  sc.groups = {{2, Shape::Square, 0}, {1, Shape::Circle, 2}};
  sc.relation = "left of";
  EXPECT_EQ(scene_caption(sc), "two red squares left of a blue circle");
  EXPECT_EQ(scene_label(sc), "red square");
  sc.groups = {{3, Shape::Triangle, 3}};
  EXPECT_EQ(scene_caption(sc), "three yellow triangles");
  EXPECT_EQ(synthetic_class_names().size(), 12u);
  const SyntheticScene a = synthetic_scene(5, 0, 17, 64), b = synthetic_scene(5, 0, 17, 64);
  EXPECT_EQ(scene_caption(a), scene_caption(b));
  Image ia, ib;
  render_scene(a, 64, 5, 0, 17, ia);
  render_scene(b, 64, 5, 0, 17, ib);
  EXPECT_EQ(ia.rgb, ib.rgb);
  int objects = 0;
  for (const auto& g : a.groups) objects += g.count;
  EXPECT_EQ(size_t(objects), a.objects.size());
}
