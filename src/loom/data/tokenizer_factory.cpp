// make_tokenizer(): Megatron's --tokenizer-type names to the implementations.
#include "loom/core/error.h"
#include "loom/data/clip_tokenizer.h"
#include "loom/data/gpt2_tokenizer.h"
#include "loom/data/hf_tokenizer.h"
#include "loom/data/sentencepiece_tokenizer.h"
#include "loom/data/tiktoken_tokenizer.h"
#include "loom/data/tokenizer.h"

namespace loom::data {

std::vector<std::string> tokenizer_types() {
  return {"GPT2BPETokenizer", "HuggingFaceTokenizer", "TikTokenizer", "SentencePieceTokenizer", "CLIPTokenizer"};
}

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config) {
  if (config.type == "GPT2BPETokenizer") return Gpt2BpeTokenizer::load(config.vocab_file, config.merge_file);
  if (config.type == "HuggingFaceTokenizer") return load_hf_tokenizer(config.tokenizer_model);
  if (config.type == "TikTokenizer") return load_tiktoken_tokenizer(config.tokenizer_model);
  if (config.type == "SentencePieceTokenizer") return load_sentencepiece_tokenizer(config.tokenizer_model);
  if (config.type == "CLIPTokenizer") return ClipTokenizer::load(config.tokenizer_model);
  std::string supported;
  for (const auto& t : tokenizer_types()) supported += (supported.empty() ? "" : ", ") + t;
  fail("unsupported tokenizer type '" + config.type + "' (supported: " + supported + ")");
}

}  // namespace loom::data
