// `loom generate`: load trained weights and sample text from a prompt.
#include <omp.h>

#include <cstdio>
#include <string>

#include "commands.h"
#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"
#include "loom/ckpt/checkpoint.h"
#include <filesystem>
#include "loom/core/error.h"
#include "loom/data/tokenizer.h"
#include "loom/generate/sampler.h"
#include "loom/util/cli.h"

namespace loom::cmd {

int generate(int argc, char** argv) {
  std::string load, prompt, vocab_file, merge_file, tokenizer_type, tokenizer_model;
  double temperature = 0.8, top_p = 0.0;
  int top_k = 40, max_new_tokens = 100, threads = 0;
  int64_t seed = 1234;
  bool stop_at_eod = true;
  ArgParser p("loom generate", "Sample text from weights written by 'loom train --save'.");
  p.add_string("--load", &load, "checkpoint directory or .safetensors file");
  p.add_string("--prompt", &prompt, "text to continue");
  p.add_int("--max-new-tokens", &max_new_tokens, "tokens to generate");
  p.add_float("--temperature", &temperature, "softmax temperature (0: greedy)");
  p.add_int("--top-k", &top_k, "sample among the k most likely tokens (0: all)");
  p.add_float("--top-p", &top_p, "sample from the smallest set with this much probability (0: off)");
  p.add_int("--seed", &seed, "random seed of the sampler");
  p.add_no_flag("--no-stop-at-eod", &stop_at_eod, "keep going past an end-of-document token");
  p.add_string("--vocab-file", &vocab_file, "GPT-2 vocab.json (default: the one recorded at training)");
  p.add_string("--merge-file", &merge_file, "GPT-2 merges.txt (default: the one recorded at training)");
  p.add_string("--tokenizer-type", &tokenizer_type, "tokenizer (default: the one recorded at training)");
  p.add_string("--tokenizer-model", &tokenizer_model, "tokenizer file (default: the one recorded at training)");
  p.add_int("--threads", &threads, "compute threads");
  p.add_example("loom generate --load runs/demo --prompt 'In the beginning' --max-new-tokens 80");
  p.add_example("loom generate --load runs/demo/iter_0000400/model.safetensors --prompt 'And God said' --top-p 0.9");
  if (!p.parse(argc, argv)) return 0;
  require(!load.empty(), "--load is required");
  require(!prompt.empty(), "--prompt is required and must not be empty");
  require(max_new_tokens >= 0, "--max-new-tokens must not be negative");
  require(temperature >= 0, "--temperature must not be negative");
  require(top_k >= 0, "--top-k must not be negative");
  require(top_p >= 0 && top_p <= 1, "--top-p must be within [0, 1]");
  if (threads > 0) omp_set_num_threads(threads);

  // A checkpoint directory written by 'loom train --save', or a weights file.
  const bool is_file = std::filesystem::is_regular_file(load);
  const std::string file = is_file ? load : checkpoint_iteration_dir(load);
  std::map<std::string, std::string> meta = is_file ? SafetensorsFile(file).metadata() : checkpoint_info(file);
  GptConfig cfg = gpt_config_from_metadata(meta, is_file ? file : file + "/metadata.json");
  if (tokenizer_type.empty()) tokenizer_type = meta.count("tokenizer_type") ? meta["tokenizer_type"] : "GPT2BPETokenizer";
  if (vocab_file.empty()) vocab_file = meta.count("vocab_file") ? meta["vocab_file"] : "";
  if (merge_file.empty()) merge_file = meta.count("merge_file") ? meta["merge_file"] : "";
  if (tokenizer_model.empty()) tokenizer_model = meta.count("tokenizer_model") ? meta["tokenizer_model"] : "";
  if (tokenizer_type == "GPT2BPETokenizer")
    require(!vocab_file.empty() && !merge_file.empty(), file + " records no tokenizer: pass --vocab-file and --merge-file");
  else
    require(!tokenizer_model.empty(), file + " records no tokenizer: pass --tokenizer-model");
  auto tok = data::make_tokenizer({tokenizer_type, vocab_file, merge_file, tokenizer_model});
  require(tok->vocab_size() == cfg.vocab_size,
          "the tokenizer has " + std::to_string(tok->vocab_size()) + " tokens but the model was trained with " +
              std::to_string(cfg.vocab_size));

  cfg.hidden_dropout = cfg.attention_dropout = 0;
  GptModel model(cfg, 1, cfg.seq_length);
  if (is_file)
    load_weights(file, model.params());
  else
    load_checkpoint(file, model, nullptr, {/*load_optim=*/false, /*finetune=*/true});

  std::vector<int32_t> tokens = tok->encode(prompt);
  require(!tokens.empty(), "--prompt encodes to no tokens");
  SamplingOptions opt;
  opt.temperature = temperature;
  opt.top_k = top_k;
  opt.top_p = top_p;
  opt.max_new_tokens = max_new_tokens;
  opt.seed = uint64_t(seed);
  opt.stop_token = stop_at_eod ? tok->eod() : -1;
  std::fputs(prompt.c_str(), stdout);
  std::fflush(stdout);
  // Tokens may split a UTF-8 character: print the decoded text as it grows, never half a character.
  std::vector<int32_t> produced;
  size_t printed = 0;
  loom::generate(model, tokens, opt, [&](int32_t t) {
    if (t == tok->eod()) return;
    produced.push_back(t);
    std::string text = tok->decode(produced);
    size_t end = text.size();
    while (end > printed && (static_cast<unsigned char>(text[end - 1]) & 0xC0) == 0x80) end--;
    if (end > printed && static_cast<unsigned char>(text[end - 1]) >= 0xC0) end--;
    if (end > printed) {
      std::fwrite(text.data() + printed, 1, end - printed, stdout);
      std::fflush(stdout);
      printed = end;
    }
  });
  std::string text = tok->decode(produced);
  if (text.size() > printed) std::fwrite(text.data() + printed, 1, text.size() - printed, stdout);
  std::fputs("\n", stdout);
  return 0;
}

}  // namespace loom::cmd
