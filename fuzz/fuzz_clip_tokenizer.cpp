// CLIP BPE vocabulary (--tokenizer-type CLIPTokenizer --tokenizer-model bpe_simple_vocab_16e6.txt.gz,
// gzip or plain text): the input is `<vocabulary file>` SEP `<text>`; loaded through make_tokenizer(),
// then the text is encoded and decoded (tokenizer_check.h; CLIP cleans and lower-cases, so no exact
// round trip) and cut into a 77-token caption as the image-text loader does.
#include "fuzz_util.h"
#include "loom/data/clip_tokenizer.h"
#include "loom/data/tokenizer.h"
#include "tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const auto parts = fuzz::split_parts(data, size, 2);
  data::TokenizerConfig cfg;
  cfg.type = "CLIPTokenizer";
  cfg.tokenizer_model = fuzz::write_scratch("bpe_vocab.txt.gz", parts[0]);
  fuzz::expect_user_errors_only([&] {
    const auto tok = data::make_tokenizer(cfg);
    fuzz::exercise_tokenizer(*tok, parts[1], /*exact_roundtrip=*/false);
    int32_t caption[77];
    std::vector<int32_t> scratch;
    data::tokenize_caption(*tok, parts[1], caption, 77, scratch);
    for (int32_t id : caption)
      if (id < 0 || id >= tok->vocab_size()) std::abort();
  });
  return 0;
}
