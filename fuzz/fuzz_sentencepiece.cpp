// SentencePiece model (--tokenizer-type SentencePieceTokenizer --tokenizer-model FILE, Llama 2's
// tokenizer.model): the input is `<.model bytes>` SEP `<text>`; loaded through make_tokenizer() (our
// wrapper around Debian's libsentencepiece, which itself is not instrumented), then the text is
// encoded and decoded (tokenizer_check.h; SentencePiece normalises, so no exact round trip).
#include "fuzz_util.h"
#include "loom/data/tokenizer.h"
#include "tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const auto parts = fuzz::split_parts(data, size, 2);
  data::TokenizerConfig cfg;
  cfg.type = "SentencePieceTokenizer";
  cfg.tokenizer_model = fuzz::write_scratch("spm.model", parts[0]);
  fuzz::expect_user_errors_only([&] {
    const auto tok = data::make_tokenizer(cfg);
    fuzz::exercise_tokenizer(*tok, parts[1], /*exact_roundtrip=*/false);
  });
  return 0;
}
