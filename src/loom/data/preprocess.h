#pragma once
// JSONL -> Megatron indexed dataset, as Megatron's tools/preprocess_data.py does for GPT (no sentence
// splitting): every line is a JSON object; for each key the string is tokenised (plus EOD with
// append_eod) and becomes one document of one sequence in `<prefix>_<key>_document.bin/.idx`.
// A document with no tokens (empty text) is not written, exactly as Megatron skips it (and then gets
// no EOD either).
//
// Lines are tokenised by `workers` threads in batches and written in input order. The outputs are
// written under temporary names and renamed into place only when everything succeeded.
// A bad line (malformed JSON, not an object, a key missing or not a string; invalid UTF-8 counts as
// malformed JSON) is a UserError "<file>:<line>: <reason>" unless skip_bad_lines, in which case it
// is left out entirely and counted.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "loom/data/tokenizer.h"

namespace loom::data {

struct PreprocessConfig {
  std::string input;
  std::string output_prefix;
  std::vector<std::string> json_keys{"text"};
  TokenizerConfig tokenizer;
  bool append_eod = false;
  int workers = 1;
  bool skip_bad_lines = false;
  bool progress = false;     // progress on stderr for long runs (util/progress.h; the command enables it)
  std::FILE* log = nullptr;  // Megatron-style messages and the summary (nullptr: silent)
};

struct PreprocessResult {
  struct Output {
    std::string key, prefix;  // prefix = <output_prefix>_<key>_document
    int64_t documents = 0, empty_documents = 0;
    uint64_t tokens = 0;
  };
  std::vector<Output> outputs;
  int64_t lines = 0, bad_lines = 0;
  std::vector<std::string> bad_line_reasons;  // the first few, "<file>:<line>: <reason>"
  uint64_t bytes = 0;                         // input bytes read
  double seconds = 0;                         // tokenising and writing, after start-up
  double startup_seconds = 0;                 // loading the tokenizer
};

PreprocessResult preprocess(const PreprocessConfig& config);
// The same with a tokenizer already loaded (config.tokenizer is not read; start-up is then only opening the
// outputs): for callers that preprocess many inputs with one tokenizer, as fuzz/fuzz_preprocess.cpp does.
PreprocessResult preprocess(const PreprocessConfig& config, const Tokenizer& tokenizer);

// "<prefix>_<key>_document", Megatron's output naming for document-level data.
std::string preprocess_output_prefix(const std::string& output_prefix, const std::string& key);

}  // namespace loom::data
