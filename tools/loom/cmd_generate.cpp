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
#include "loom/generate/generate_args.h"
#include "loom/generate/sampler.h"

namespace loom::cmd {

int generate(int argc, char** argv) {
  GenerateArgs a;
  if (!parse_generate_args(argc, argv, a)) return 0;
  std::string load = a.load, prompt = a.prompt, vocab_file = a.vocab_file, merge_file = a.merge_file,
              tokenizer_type = a.tokenizer_type, tokenizer_model = a.tokenizer_model;
  const double temperature = a.temperature, top_p = a.top_p;
  const int top_k = a.top_k, max_new_tokens = a.max_new_tokens, threads = a.threads;
  const int64_t seed = a.seed;
  const bool stop_at_eod = a.stop_at_eod;
  if (threads > 0) omp_set_num_threads(threads);

  // A checkpoint directory written by 'loom train --save', or a weights file.
  const bool is_file = std::filesystem::is_regular_file(load);
  const std::string file = is_file ? load : checkpoint_iteration_dir(load);
  std::map<std::string, std::string> meta = is_file ? SafetensorsFile(file).metadata() : checkpoint_info(file);
  ModelConfig cfg = model_config_from_metadata(meta, is_file ? file : file + "/metadata.json");
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
  DecoderModel model(cfg, 1, cfg.seq_length);
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
