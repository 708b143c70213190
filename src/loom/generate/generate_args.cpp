#include "loom/generate/generate_args.h"

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

bool parse_generate_args(int argc, char** argv, GenerateArgs& a) {
  ArgParser p("loom generate", "Sample text from weights written by 'loom train --save'.");
  p.add_string("--load", &a.load, "checkpoint directory or .safetensors file");
  p.add_string("--prompt", &a.prompt, "text to continue");
  p.add_int("--max-new-tokens", &a.max_new_tokens, "tokens to generate");
  p.add_float("--temperature", &a.temperature, "softmax temperature (0: greedy)");
  p.add_int("--top-k", &a.top_k, "sample among the k most likely tokens (0: all)");
  p.add_float("--top-p", &a.top_p, "sample from the smallest set with this much probability (0: off)");
  p.add_int("--seed", &a.seed, "random seed of the sampler");
  p.add_no_flag("--no-stop-at-eod", &a.stop_at_eod, "keep going past an end-of-document token");
  p.add_string("--vocab-file", &a.vocab_file, "GPT-2 vocab.json (default: the one recorded at training)");
  p.add_string("--merge-file", &a.merge_file, "GPT-2 merges.txt (default: the one recorded at training)");
  p.add_string("--tokenizer-type", &a.tokenizer_type, "tokenizer (default: the one recorded at training)");
  p.add_string("--tokenizer-model", &a.tokenizer_model, "tokenizer file (default: the one recorded at training)");
  p.add_int("--threads", &a.threads, "compute threads");
  p.add_example("loom generate --load runs/demo --prompt 'In the beginning' --max-new-tokens 80");
  p.add_example("loom generate --load runs/demo/iter_0000400/model.safetensors --prompt 'And God said' --top-p 0.9");
  if (!p.parse(argc, argv)) return false;
  require(!a.load.empty(), "--load is required");
  require(!a.prompt.empty(), "--prompt is required and must not be empty");
  require(a.max_new_tokens >= 0, "--max-new-tokens must not be negative");
  require(a.temperature >= 0, "--temperature must not be negative");
  require(a.top_k >= 0, "--top-k must not be negative");
  require(a.top_p >= 0 && a.top_p <= 1, "--top-p must be within [0, 1]");
  return true;
}

}  // namespace loom
