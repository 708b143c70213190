#include "loom/data/make_images_args.h"

#include <cstdint>

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom::data {

bool parse_make_images_args(int argc, char** argv, SyntheticImagesConfig& cfg) {
  int64_t seed = int64_t(cfg.seed);
  ArgParser p("loom make-images",
              "Render a synthetic image-caption set for image-text training (CoCa/CLIP): 1-3 shapes (square,\n"
              "circle, triangle) in red, green, blue or yellow, with counts and relative positions, on a plain or\n"
              "lightly noisy background. Writes <output>/train_NNNNNN.jpg and val_NNNNNN.jpg, train.jsonl and\n"
              "val.jsonl with one {\"image\", \"caption\", \"label\"} object per line (image paths relative to the\n"
              "index file; caption e.g. \"two red squares left of a blue circle\"; label the first-named shape's\n"
              "\"colour shape\"), and classes.json (the 12 class names and prompt templates for zero-shot\n"
              "classification). The same seed gives the same bytes; the directory appears only when complete.");
  p.add_string("--output", &cfg.output, "directory to create (must not exist or be empty, unless --overwrite)");
  p.add_int("--num-train", &cfg.num_train, "training images");
  p.add_int("--num-val", &cfg.num_val, "held-out images (retrieval and zero-shot evaluation)");
  p.add_int("--image-size", &cfg.image_size, "width and height in pixels (32..4096)");
  p.add_int("--seed", &seed, "random seed of the scenes and the noise");
  p.add_int("--jpeg-quality", &cfg.jpeg_quality, "JPEG quality (1..100)");
  p.add_flag("--overwrite", &cfg.overwrite, "replace a set written earlier by make-images (a directory with classes.json)");
  p.add_example("loom make-images --output data/shapes --num-train 2000 --num-val 500 --image-size 64 --seed 1");
  p.add_example("    # data/shapes/train.jsonl and val.jsonl are image-text indexes: {\"image\", \"caption\", \"label\"} per line");
  if (!p.parse(argc, argv)) return false;
  require(seed >= 0, "--seed must not be negative");
  cfg.seed = uint64_t(seed);
  return true;
}

}  // namespace loom::data
