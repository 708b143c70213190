// `loom preprocess` JSONL input: the input is the JSONL file. It is tokenised with a small GPT-2
// vocabulary (tiny_gpt2.h) for keys "text" and "title" with --append-eod, once failing on the first bad
// line and once with --skip-bad-lines; each output it writes is then opened and read back, and must hold
// exactly the documents and tokens the run reported.
#include "fuzz_util.h"
#include "loom/data/indexed_dataset.h"
#include "loom/data/preprocess.h"
#include "tiny_gpt2.h"

namespace {

using namespace loom;

std::unique_ptr<data::Tokenizer> tok;  // loaded once: preprocess() with a loaded tokenizer
int32_t eod = -1;

void run(const std::string& input, bool skip_bad_lines) {
  data::PreprocessConfig cfg;
  cfg.input = input;
  cfg.output_prefix = fuzz::scratch_path("pp_out");
  cfg.json_keys = {"text", "title"};
  cfg.append_eod = true;
  cfg.skip_bad_lines = skip_bad_lines;
  fuzz::expect_user_errors_only([&] {
    const data::PreprocessResult r = data::preprocess(cfg, *tok);
    for (const auto& o : r.outputs) {
      const data::IndexedDataset ds(o.prefix);
      if (ds.size() != o.documents || uint64_t(ds.total_tokens()) != o.tokens) std::abort();
      std::vector<int32_t> ids;
      for (int64_t i = 0; i < ds.size(); i++) {
        ids.resize(size_t(ds.sequence_length(i)));
        ds.get(i, 0, int64_t(ids.size()), ids.data());
        // --append-eod: every document written ends with the EOD, and holds something before it
        if (ids.size() < 2 || ids.back() != eod) std::abort();
      }
    }
  });
}

}  // namespace

// The vocabulary is cut once, before the first input (reading the bundled 50k one takes seconds under
// ASan, which must not count towards the first input's time limit).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const fuzz::Gpt2Files f = fuzz::tiny_gpt2(300);
  data::TokenizerConfig tc;
  tc.vocab_file = fuzz::write_scratch("pp_vocab.json", f.vocab_json);
  tc.merge_file = fuzz::write_scratch("pp_merges.txt", f.merges_txt);
  tok = data::make_tokenizer(tc);
  eod = tok->eod();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input =
      fuzz::write_scratch("input.jsonl", std::string_view(reinterpret_cast<const char*>(data), size));
  run(input, false);
  run(input, true);
  return 0;
}
