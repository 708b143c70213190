#pragma once
// `loom preprocess`'s command line: its flags parsed into a PreprocessConfig and the required ones checked,
// before any file is read (tools/loom/cmd_preprocess.cpp runs it; fuzz/fuzz_subcommand_args.cpp drives it).
#include "loom/data/preprocess.h"

namespace loom::data {

// Returns false when --help was printed (the command exits 0). Throws UserError naming the flag.
bool parse_preprocess_args(int argc, char** argv, PreprocessConfig& cfg);

}  // namespace loom::data
