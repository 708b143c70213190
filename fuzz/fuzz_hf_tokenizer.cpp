// Hugging Face tokenizer.json (--tokenizer-type HuggingFaceTokenizer --tokenizer-model FILE): the input
// is `<tokenizer.json>` SEP `<text>`; loaded through make_tokenizer(), then the text is encoded and
// decoded (tokenizer_check.h).
#include "fuzz_util.h"
#include "loom/data/tokenizer.h"
#include "tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const auto parts = fuzz::split_parts(data, size, 2);
  data::TokenizerConfig cfg;
  cfg.type = "HuggingFaceTokenizer";
  cfg.tokenizer_model = fuzz::write_scratch("tokenizer.json", parts[0]);
  fuzz::expect_user_errors_only([&] {
    const auto tok = data::make_tokenizer(cfg);
    fuzz::exercise_tokenizer(*tok, parts[1], /*exact_roundtrip=*/false);
  });
  return 0;
}
