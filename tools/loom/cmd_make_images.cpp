// `loom make-images`: the synthetic image-caption set (shapes, colours, counts, positions) that the
// CoCa tests and demo train on; see src/loom/data/synthetic_images.h.
#include <cstdio>

#include "commands.h"
#include "loom/core/error.h"
#include "loom/data/make_images_args.h"

namespace loom::cmd {

int make_images(int argc, char** argv) {
  data::SyntheticImagesConfig cfg;
  if (!data::parse_make_images_args(argc, argv, cfg)) return 0;
  data::make_synthetic_images(cfg, stdout);
  return 0;
}

}  // namespace loom::cmd
