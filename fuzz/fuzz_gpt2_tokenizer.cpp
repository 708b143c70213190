// GPT-2 vocab.json + merges.txt (--vocab-file, --merge-file): the input is `<vocab.json>` SEP
// `<merges.txt>` SEP `<text>`. The files are loaded as make_tokenizer() loads them and the text is
// encoded and decoded (tokenizer_check.h).
#include "fuzz_util.h"
#include "loom/data/tokenizer.h"
#include "tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const auto parts = fuzz::split_parts(data, size, 3);
  data::TokenizerConfig cfg;
  cfg.vocab_file = fuzz::write_scratch("vocab.json", parts[0]);
  cfg.merge_file = fuzz::write_scratch("merges.txt", parts[1]);
  fuzz::expect_user_errors_only([&] {
    const auto tok = data::make_tokenizer(cfg);
    fuzz::exercise_tokenizer(*tok, parts[2], /*exact_roundtrip=*/true);
  });
  return 0;
}
