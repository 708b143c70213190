#pragma once
// `loom make-images`'s command line: its flags parsed into a SyntheticImagesConfig (tools/loom/cmd_make_images.cpp
// runs it, then make_synthetic_images checks the rest; fuzz/fuzz_subcommand_args.cpp drives both checks).
#include "loom/data/synthetic_images.h"

namespace loom::data {

// Returns false when --help was printed (the command exits 0). Throws UserError naming the flag.
bool parse_make_images_args(int argc, char** argv, SyntheticImagesConfig& cfg);

}  // namespace loom::data
