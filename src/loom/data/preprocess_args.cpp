#include "loom/data/preprocess_args.h"

#include <string>

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom::data {

bool parse_preprocess_args(int argc, char** argv, PreprocessConfig& cfg) {
  std::string dataset_impl = "mmap";
  ArgParser p("loom preprocess",
              "Tokenise a JSONL file (one JSON object per line) into Megatron's mmap indexed dataset:\n"
              "<output-prefix>_<key>_document.bin and .idx for every --json-keys key, usable as\n"
              "--data-path <output-prefix>_<key>_document. The same flags and output as Megatron-LM's\n"
              "tools/preprocess_data.py (no sentence splitting). Documents whose text has no tokens are\n"
              "left out, as Megatron does. Outputs appear only when complete.");
  p.add_string("--input", &cfg.input, "path to the input JSONL file");
  p.add_string("--output-prefix", &cfg.output_prefix, "path of the outputs without _<key>_document.bin/.idx");
  p.add_strings("--json-keys", &cfg.json_keys, "space-separated keys to extract from each JSON line");
  p.add_choice("--tokenizer-type", &cfg.tokenizer.type, tokenizer_types(), "tokenizer");
  p.add_string("--vocab-file", &cfg.tokenizer.vocab_file, "the tokenizer's vocabulary (GPT-2: vocab.json)");
  p.add_string("--merge-file", &cfg.tokenizer.merge_file, "the BPE merges (GPT-2: merges.txt)");
  p.add_string("--tokenizer-model", &cfg.tokenizer.tokenizer_model,
               "HuggingFaceTokenizer: tokenizer.json (or its directory); TikTokenizer: a tiktoken rank file "
               "(Llama 3's tokenizer.model); SentencePieceTokenizer: a .model file (Llama 2)");
  p.add_flag("--append-eod", &cfg.append_eod, "append the end-of-document token to every document");
  p.add_choice("--dataset-impl", &dataset_impl, {"mmap"}, "output format (Megatron's mmap indexed dataset)");
  p.add_int("--workers", &cfg.workers, "tokenising threads; output order is the input order");
  p.add_flag("--skip-bad-lines", &cfg.skip_bad_lines,
             "leave out and count bad lines instead of stopping at the first");
  p.add_example("loom preprocess --input data/corpus/kjv.jsonl --output-prefix out/kjv \\");
  p.add_example("    --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt --append-eod --workers 2");
  p.add_example("    # writes out/kjv_text_document.bin and .idx; train with --data-path out/kjv_text_document");
  p.add_example("loom preprocess --input data/corpus/kjv.jsonl --output-prefix out/kjv_llama3 \\");
  p.add_example("    --tokenizer-type HuggingFaceTokenizer --tokenizer-model llama3/tokenizer.json --append-eod");
  p.add_example("    # Llama 3 ids; TikTokenizer takes Meta's original tokenizer.model the same way");
  p.add_example("loom preprocess --input data/corpus/kjv.jsonl --output-prefix out/kjv_llama2 \\");
  p.add_example("    --tokenizer-type SentencePieceTokenizer --tokenizer-model llama2/tokenizer.model --append-eod");
  p.add_example("loom preprocess --input docs.jsonl --json-keys title body --output-prefix out/docs \\");
  p.add_example("    --vocab-file vocab.json --merge-file merges.txt --skip-bad-lines");
  p.add_example("    # writes out/docs_title_document.* and out/docs_body_document.*");
  if (!p.parse(argc, argv)) return false;
  if (cfg.input.empty() || cfg.output_prefix.empty()) {
    std::string missing;
    if (cfg.input.empty()) missing += " --input";
    if (cfg.output_prefix.empty()) missing += " --output-prefix";
    fail("the following arguments are required:" + missing + " (see 'loom preprocess --help')");
  }
  return true;
}

}  // namespace loom::data
