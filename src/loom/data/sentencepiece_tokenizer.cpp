#include "loom/data/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <exception>

#include "loom/core/error.h"
#include "loom/data/files.h"

namespace loom::data {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) {
    // Read the file ourselves first: a clear "cannot open" beats the library's status text.
    const std::string bytes = read_whole_file(path, "tokenizer file");
    sentencepiece::util::Status status;
    try {
      status = sp_.LoadFromSerializedProto(bytes);
    } catch (const std::exception& e) {
      // Some malformed piece lists make the library's trie builder (Darts) throw instead of returning a
      // status, e.g. "failed to insert key: zero-length key" (found by fuzz_sentencepiece).
      fail("tokenizer file '" + path + "': not a SentencePiece model (" + e.what() + ")");
    }
    if (!status.ok())
      fail("tokenizer file '" + path + "': not a SentencePiece model (" + status.ToString() + ")");
    if (sp_.GetPieceSize() <= 0) fail("tokenizer file '" + path + "': the SentencePiece model has no pieces");
  }

  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) const override {
    thread_local std::vector<int> ids;
    ids.clear();
    const auto status = is_valid_utf8(text) ? sp_.Encode(text, &ids) : sp_.Encode(repair_utf8(text), &ids);
    if (!status.ok()) fail("SentencePiece could not encode the text (" + status.ToString() + ")");
    out.insert(out.end(), ids.begin(), ids.end());
  }

  std::string decode(std::span<const int32_t> ids) const override {
    std::vector<int> v(ids.begin(), ids.end());
    for (int id : v)
      if (id < 0 || id >= sp_.GetPieceSize())
        fail("token id " + std::to_string(id) + " is not in the vocabulary (" + std::to_string(sp_.GetPieceSize()) +
             " ids)");
    std::string out;
    const auto status = sp_.Decode(v, &out);
    if (!status.ok()) fail("SentencePiece could not decode the ids (" + status.ToString() + ")");
    return out;
  }

  int64_t vocab_size() const override { return sp_.GetPieceSize(); }
  int32_t eod() const override { return sp_.eos_id(); }
  int32_t bos() const override { return sp_.bos_id(); }
  std::string type() const override { return "SentencePieceTokenizer"; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path) {
  require(!path.empty(), "SentencePieceTokenizer needs --tokenizer-model (a SentencePiece .model file)");
  return std::make_unique<SentencePieceTokenizer>(path);
}

}  // namespace loom::data
