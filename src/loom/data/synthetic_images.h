#pragma once
// A synthetic image-caption set for tests and the CoCa demo (`loom make-images`): 1-3 anti-aliased
// shapes (square, circle, triangle) in a few colours on a plain, lightly noisy background, with a
// caption that is a deterministic function of the scene ("two red squares left of a blue circle") and
// a class label (the first-named group's "colour shape") for zero-shot classification. Small, quick to
// make and learnable in minutes; every image depends only on (seed, split, index), so a set is the same
// bytes on any machine and thread count.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "loom/data/image_codec.h"

namespace loom::data {

enum class Shape { Square, Circle, Triangle };

struct SceneObject {
  Shape shape;
  int colour;           // index into synthetic_colour_names()
  float cx, cy, r;      // centre and size in pixels
  uint8_t rgb[3];       // the colour with a little jitter
};

struct SceneGroup {
  int count;  // 1..3 objects of one shape and colour
  Shape shape;
  int colour;
};

struct SyntheticScene {
  std::vector<SceneGroup> groups;  // one, or two with a relation
  std::string relation;            // "left of", "right of", "above", "below" (two groups only)
  std::vector<SceneObject> objects;
  uint8_t background[3];
  int noise;  // amplitude of the uniform per-pixel noise (0: plain)
};

const std::vector<std::string>& synthetic_colour_names();
const std::vector<std::string>& synthetic_shape_names();
// "red square", "red circle", ... (colour-major): the zero-shot classes.
std::vector<std::string> synthetic_class_names();
// Prompt templates for zero-shot classification ("a photo of a {}." ...), '{}' stands for a class name.
const std::vector<std::string>& synthetic_templates();

// The scene of image `index` of split `split` (0 train, 1 val) for an image_size x image_size canvas.
SyntheticScene synthetic_scene(uint64_t seed, int split, int64_t index, int image_size);
std::string scene_caption(const SyntheticScene& scene);
std::string scene_label(const SyntheticScene& scene);  // the first group's "colour shape"
// Renders with 4x4 supersampled coverage (edges stay smooth under crops and resizes).
void render_scene(const SyntheticScene& scene, int image_size, uint64_t seed, int split, int64_t index, Image& out);

struct SyntheticImagesConfig {
  std::string output;
  int64_t num_train = 1000, num_val = 200;
  int image_size = 64;
  uint64_t seed = 1234;
  int jpeg_quality = 90;
  bool overwrite = false;
};

// Checks everything (UserError naming the flag) before any work.
void check_synthetic_images_config(const SyntheticImagesConfig& cfg);
// Writes <output>/{train,val}_NNNNNN.jpg, train.jsonl, val.jsonl ({"image", "caption", "label"} per
// line, image paths relative to the index file) and classes.json ({"classes", "templates"}) into a
// temporary sibling directory renamed into place when complete. Prints one summary line to `log`.
void make_synthetic_images(const SyntheticImagesConfig& cfg, std::FILE* log);

}  // namespace loom::data
