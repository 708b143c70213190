#pragma once
// `loom convert`'s command line: its flags, and the checks that need no file (tools/loom/cmd_convert.cpp runs
// the conversion; fuzz/fuzz_subcommand_args.cpp drives the parser).
#include <string>

namespace loom {

struct ConvertArgs {
  std::string load;    // --load: a checkpoint directory or one iteration of it
  std::string output;  // --output: a file (safetensors, --from hf) or a directory (hf, loom)
  std::string to = "hf";
  std::string from;    // "hf" with --from hf DIR
  std::string hf_dir;  // DIR of --from hf DIR
  int divisible_by = 128;
  bool overwrite = false;

  // Whether --output names a file (safetensors, --from hf) rather than a directory.
  bool output_is_file() const { return !from.empty() || to == "safetensors"; }
};

// Returns false when --help was printed (the command exits 0). Throws UserError naming the flag: --output
// missing, --from hf without its directory or together with --load, neither --load nor --from, a
// non-positive --make-vocab-size-divisible-by.
bool parse_convert_args(int argc, char** argv, ConvertArgs& a);

}  // namespace loom
