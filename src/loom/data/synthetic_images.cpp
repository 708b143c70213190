#include "loom/data/synthetic_images.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "loom/core/error.h"
#include "loom/core/rng.h"
#include "loom/data/files.h"
#include "loom/util/output_path.h"
#include "loom/util/tmp_cleanup.h"

namespace fs = std::filesystem;

namespace loom::data {
namespace {

// Saturated colours that stay apart after JPEG's chroma subsampling and on any of the backgrounds.
const uint8_t kColours[4][3] = {{220, 45, 45}, {50, 175, 70}, {50, 90, 225}, {235, 205, 40}};
constexpr int kNumShapes = 3;
constexpr uint64_t kSceneStream = 0x5359'4E54;  // "SYNT"
constexpr uint64_t kNoiseStream = 0x4E4F'4953;  // "NOIS"

const char* count_word(int n) { return n == 1 ? "a" : n == 2 ? "two" : "three"; }

std::string group_text(const SceneGroup& g) {
  std::string s = std::string(count_word(g.count)) + " " + synthetic_colour_names()[size_t(g.colour)] + " " +
                  synthetic_shape_names()[size_t(g.shape)];
  return g.count > 1 ? s + "s" : s;
}

bool inside(const SceneObject& o, float x, float y) {
  const float dx = x - o.cx, dy = y - o.cy;
  switch (o.shape) {
    case Shape::Circle:
      return dx * dx + dy * dy <= o.r * o.r;
    case Shape::Square: {
      const float h = 0.85f * o.r;
      return std::fabs(dx) <= h && std::fabs(dy) <= h;
    }
    case Shape::Triangle: {
      // Upright equilateral triangle with circumradius 1.15 r: inside all three edges' half-planes.
      const float R = 1.15f * o.r, hx = R * 0.8660254f;
      const float ax = 0, ay = -R, bx = hx, by = R / 2, cx = -hx, cy = R / 2;
      auto edge = [&](float x0, float y0, float x1, float y1) { return (x1 - x0) * (dy - y0) - (y1 - y0) * (dx - x0); };
      const float e0 = edge(ax, ay, bx, by), e1 = edge(bx, by, cx, cy), e2 = edge(cx, cy, ax, ay);
      return (e0 >= 0 && e1 >= 0 && e2 >= 0) || (e0 <= 0 && e1 <= 0 && e2 <= 0);
    }
  }
  return false;
}

}  // namespace

const std::vector<std::string>& synthetic_colour_names() {
  static const std::vector<std::string> names = {"red", "green", "blue", "yellow"};
  return names;
}

const std::vector<std::string>& synthetic_shape_names() {
  static const std::vector<std::string> names = {"square", "circle", "triangle"};
  return names;
}

std::vector<std::string> synthetic_class_names() {
  std::vector<std::string> out;
  for (const auto& c : synthetic_colour_names())
    for (const auto& s : synthetic_shape_names()) out.push_back(c + " " + s);
  return out;
}

const std::vector<std::string>& synthetic_templates() {
  static const std::vector<std::string> t = {"a photo of a {}.", "a picture of a {}.", "a rendering of a {}.", "a {}."};
  return t;
}

SyntheticScene synthetic_scene(uint64_t seed, int split, int64_t index, int image_size) {
  Rng rng(stream_key(seed, kSceneStream, uint64_t(split), uint64_t(index)));
  auto pick = [&rng](int n) { return int((uint64_t(rng.next_u32()) * uint64_t(n)) >> 32); };
  const float S = float(image_size);
  SyntheticScene sc;
  const int ncol = int(synthetic_colour_names().size());
  // 40% one group of 1-3, 60% two groups of (1,1), (1,2) or (2,1) with a relation between them.
  if (rng.uniform() < 0.4f) {
    sc.groups.push_back({1 + pick(3), Shape(pick(kNumShapes)), pick(ncol)});
  } else {
    static const int counts[3][2] = {{1, 1}, {1, 2}, {2, 1}};
    const int* c = counts[pick(3)];
    SceneGroup a{c[0], Shape(pick(kNumShapes)), pick(ncol)}, b{c[1], Shape(pick(kNumShapes)), pick(ncol)};
    while (b.shape == a.shape && b.colour == a.colour) b = {c[1], Shape(pick(kNumShapes)), pick(ncol)};
    static const char* relations[4] = {"left of", "right of", "above", "below"};
    sc.groups = {a, b};
    sc.relation = relations[pick(4)];
  }
  // Where each group may go: the whole canvas, or the half its relation names.
  struct Region { float x0, y0, x1, y1; };
  std::vector<Region> regions;
  if (sc.groups.size() == 1) {
    regions.push_back({0, 0, S, S});
  } else {
    const Region left{0, 0, S / 2, S}, right{S / 2, 0, S, S}, top{0, 0, S, S / 2}, bottom{0, S / 2, S, S};
    if (sc.relation == "left of") regions = {left, right};
    if (sc.relation == "right of") regions = {right, left};
    if (sc.relation == "above") regions = {top, bottom};
    if (sc.relation == "below") regions = {bottom, top};
  }
  float scale = 1.0f;
  for (int attempt = 0;; attempt++) {  // shrink the shapes if they do not fit without touching
    sc.objects.clear();
    bool ok = true;
    for (size_t g = 0; g < sc.groups.size() && ok; g++) {
      for (int k = 0; k < sc.groups[g].count && ok; k++) {
        SceneObject o;
        o.shape = sc.groups[g].shape;
        o.colour = sc.groups[g].colour;
        o.r = S * (0.09f + 0.04f * rng.uniform()) * scale;
        const float m = o.r * 1.15f + 0.06f * S;  // keeps the shape inside a 0.9-area random crop
        const Region& R = regions[g];
        ok = false;
        for (int t = 0; t < 200 && !ok; t++) {
          o.cx = R.x0 + m + (R.x1 - R.x0 - 2 * m) * rng.uniform();
          o.cy = R.y0 + m + (R.y1 - R.y0 - 2 * m) * rng.uniform();
          ok = true;
          for (const auto& p : sc.objects)
            if (std::hypot(o.cx - p.cx, o.cy - p.cy) < 1.15f * (o.r + p.r) + 0.04f * S) ok = false;
        }
        for (int c = 0; c < 3; c++)
          o.rgb[c] = uint8_t(std::clamp(int(kColours[o.colour][c]) + pick(25) - 12, 0, 255));
        sc.objects.push_back(o);
      }
    }
    if (ok) break;
    scale *= 0.9f;
    require(attempt < 20, "synthetic scene: shapes do not fit (internal)");
  }
  const int grey = 95 + pick(71);
  for (int c = 0; c < 3; c++) sc.background[c] = uint8_t(grey + pick(25) - 12);
  sc.noise = rng.uniform() < 0.5f ? 0 : 3 + pick(6);
  return sc;
}

std::string scene_caption(const SyntheticScene& sc) {
  std::string s = group_text(sc.groups[0]);
  if (sc.groups.size() > 1) s += " " + sc.relation + " " + group_text(sc.groups[1]);
  return s;
}

std::string scene_label(const SyntheticScene& sc) {
  return synthetic_colour_names()[size_t(sc.groups[0].colour)] + " " +
         synthetic_shape_names()[size_t(sc.groups[0].shape)];
}

void render_scene(const SyntheticScene& sc, int S, uint64_t seed, int split, int64_t index, Image& out) {
  out.width = out.height = S;
  out.rgb.resize(size_t(S) * S * 3);
  Rng noise(stream_key(seed, kNoiseStream, uint64_t(split), uint64_t(index)));
  std::vector<float> px(size_t(S) * S * 3);
  for (size_t i = 0; i < size_t(S) * S; i++) {
    const int n = sc.noise ? int((uint64_t(noise.next_u32()) * uint64_t(2 * sc.noise + 1)) >> 32) - sc.noise : 0;
    for (int c = 0; c < 3; c++) px[3 * i + size_t(c)] = float(sc.background[c] + n);
  }
  for (const auto& o : sc.objects) {
    const float ext = 1.2f * o.r + 1;
    const int x0 = std::max(0, int(o.cx - ext)), x1 = std::min(S, int(o.cx + ext) + 1);
    const int y0 = std::max(0, int(o.cy - ext)), y1 = std::min(S, int(o.cy + ext) + 1);
    for (int y = y0; y < y1; y++)
      for (int x = x0; x < x1; x++) {
        int hits = 0;
        for (int sy = 0; sy < 4; sy++)
          for (int sx = 0; sx < 4; sx++) hits += inside(o, x + (sx + 0.5f) / 4, y + (sy + 0.5f) / 4);
        if (!hits) continue;
        const float a = hits / 16.0f;
        float* p = &px[(size_t(y) * S + x) * 3];
        for (int c = 0; c < 3; c++) p[c] = (1 - a) * p[c] + a * o.rgb[c];
      }
  }
  for (size_t i = 0; i < px.size(); i++) out.rgb[i] = uint8_t(std::clamp(std::lround(px[i]), 0l, 255l));
}

void check_synthetic_images_config(const SyntheticImagesConfig& cfg) {
  require(!cfg.output.empty(), "the following arguments are required: --output (see 'loom make-images --help')");
  require(cfg.num_train >= 1, "--num-train must be at least 1 (got " + std::to_string(cfg.num_train) + ")");
  require(cfg.num_val >= 0, "--num-val must not be negative (got " + std::to_string(cfg.num_val) + ")");
  // Compared without adding: the sum of two int64 flags can overflow (undefined behaviour).
  require(cfg.num_train <= 100'000'000 && cfg.num_val <= 100'000'000 - cfg.num_train,
          "--num-train + --num-val must be at most 100000000");
  require(cfg.image_size >= 32 && cfg.image_size <= 4096,
          "--image-size must be in 32..4096 (got " + std::to_string(cfg.image_size) + ")");
  require(cfg.jpeg_quality >= 1 && cfg.jpeg_quality <= 100,
          "--jpeg-quality must be in 1..100 (got " + std::to_string(cfg.jpeg_quality) + ")");
  const std::string why = output_dir_problem(cfg.output);
  require(why.empty(), "--output " + cfg.output + ": " + why);
  std::error_code ec;
  if (fs::is_directory(cfg.output, ec) && !fs::is_empty(cfg.output, ec)) {
    require(cfg.overwrite, "--output " + cfg.output + " is not empty (--overwrite replaces a set written by loom make-images)");
    require(fs::exists(fs::path(cfg.output) / "classes.json", ec),
            "--output " + cfg.output + " is not empty and holds no classes.json: not a set written by loom make-images, "
            "refusing to replace it even with --overwrite");
  }
}

void make_synthetic_images(const SyntheticImagesConfig& cfg, std::FILE* log) {
  check_synthetic_images_config(cfg);
  const auto start = std::chrono::steady_clock::now();
  std::string out_str = cfg.output;
  while (out_str.size() > 1 && out_str.back() == '/') out_str.pop_back();
  const fs::path out(out_str);
  fs::path parent = out.parent_path();
  if (parent.empty()) parent = ".";
  fs::create_directories(parent);
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = parent / (out.filename().string() + ".tmp-" + pid);
  fs::remove_all(tmp);
  fs::create_directory(tmp);
  TmpRegistration registration(tmp.string(), /*directory=*/true);
  try {
    const char* split_names[2] = {"train", "val"};
    const int64_t counts[2] = {cfg.num_train, cfg.num_val};
    for (int split = 0; split < 2; split++) {
      const int64_t n = counts[split];
      std::vector<std::string> lines(static_cast<size_t>(n));
      std::string error;
#pragma omp parallel for schedule(dynamic, 16)
      for (int64_t i = 0; i < n; i++) {
        try {
          const SyntheticScene sc = synthetic_scene(cfg.seed, split, i, cfg.image_size);
          Image img;
          render_scene(sc, cfg.image_size, cfg.seed, split, i, img);
          char name[64];
          std::snprintf(name, sizeof name, "%s_%06lld.jpg", split_names[split], (long long)i);
          write_jpeg((tmp / name).string(), img, cfg.jpeg_quality);
          nlohmann::ordered_json j;
          j["image"] = name;
          j["caption"] = scene_caption(sc);
          j["label"] = scene_label(sc);
          lines[size_t(i)] = j.dump() + "\n";
        } catch (const std::exception& e) {
#pragma omp critical(make_images_error)
          if (error.empty()) error = e.what();
        }
      }
      if (!error.empty()) fail(error);
      std::string text;
      for (const auto& l : lines) text += l;
      AtomicFile f((tmp / (std::string(split_names[split]) + ".jsonl")).string());
      f.write(text.data(), text.size());
      f.commit();
    }
    nlohmann::ordered_json classes;
    classes["classes"] = synthetic_class_names();
    classes["templates"] = synthetic_templates();
    classes["label_key"] = "label";
    const std::string text = classes.dump(2) + "\n";
    AtomicFile f((tmp / "classes.json").string());
    f.write(text.data(), text.size());
    f.commit();
    // Into place: an earlier set (checked above) is moved aside first and removed once the new one is in.
    std::error_code ec;
    if (fs::exists(out, ec)) {
      const fs::path old = parent / (out.filename().string() + ".old-" + pid);
      fs::remove_all(old);
      fs::rename(out, old);
      fs::rename(tmp, out);
      fs::remove_all(old);
    } else {
      fs::rename(tmp, out);
    }
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fail("--output " + cfg.output + ": " + e.what());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (log)
    std::fprintf(log, "wrote %lld train and %lld val images (%dx%d JPEG, quality %d, %zu classes) to %s in %.1f s\n",
                 (long long)cfg.num_train, (long long)cfg.num_val, cfg.image_size, cfg.image_size, cfg.jpeg_quality,
                 synthetic_class_names().size(), cfg.output.c_str(), secs);
}

}  // namespace loom::data
