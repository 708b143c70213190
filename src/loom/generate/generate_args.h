#pragma once
// `loom generate`'s command line: its flags parsed and checked before any file is read
// (tools/loom/cmd_generate.cpp runs it; fuzz/fuzz_subcommand_args.cpp drives it).
#include <cstdint>
#include <string>

namespace loom {

struct GenerateArgs {
  std::string load, prompt, vocab_file, merge_file, tokenizer_type, tokenizer_model;
  double temperature = 0.8, top_p = 0.0;
  int top_k = 40, max_new_tokens = 100, threads = 0;
  int64_t seed = 1234;
  bool stop_at_eod = true;
};

// Returns false when --help was printed (the command exits 0). Throws UserError naming the flag.
bool parse_generate_args(int argc, char** argv, GenerateArgs& a);

}  // namespace loom
