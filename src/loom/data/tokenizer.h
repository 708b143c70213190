#pragma once
// Tokenizers turn text (bytes) into token ids and back. `Tokenizer` is the interface every
// implementation provides, made by make_tokenizer() from Megatron's --tokenizer-type:
//   GPT2BPETokenizer        GPT-2's byte-level BPE from vocab.json + merges.txt (gpt2_tokenizer.h)
//   HuggingFaceTokenizer    a byte-level BPE tokenizer.json, e.g. Llama 3's (hf_tokenizer.h)
//   TikTokenizer            a tiktoken rank file, e.g. Llama 3's original tokenizer.model (tiktoken_tokenizer.h)
//   SentencePieceTokenizer  a SentencePiece .model, e.g. Llama 2's (sentencepiece_tokenizer.h)
//   CLIPTokenizer           CLIP's bpe_simple_vocab_16e6.txt.gz (clip_tokenizer.h; it cleans and lower-cases
//                           the text first and maps written special-token names, as open_clip does)
//
// Contract shared by all implementations:
//  - encode() takes raw bytes. Text is UTF-8; invalid UTF-8 is first repaired the way a WHATWG /
//    Python `errors="replace"` decoder does (each maximal invalid subpart becomes U+FFFD, see
//    repair_utf8()), so ids equal those of the reference encoders fed the decoded string.
//  - encode() is const and safe to call from many threads at once.
//  - decode() returns the exact bytes the ids stand for (no UTF-8 repair), so
//    decode(encode(x)) == repair_utf8(x) byte for byte. (SentencePiece is the exception: its decode()
//    is the library's detokenisation, and its encode() normalises the text first.)
//  - Special tokens written in the text (e.g. "<|endoftext|>") are encoded as ordinary text, as
//    Megatron's tokenizers do; eod() is only ever appended explicitly.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Appends the ids of `text` to `out`.
  virtual void encode(std::string_view text, std::vector<int32_t>& out) const = 0;
  // The bytes of `ids`, concatenated. Throws UserError on an id outside [0, vocab_size()).
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // Megatron's tokenizer.vocab_size: the number of entries in the vocabulary (50257 for GPT-2),
  // before any padding for the embedding table.
  virtual int64_t vocab_size() const = 0;
  // The end-of-document id that --append-eod appends; -1 when the tokenizer has none.
  virtual int32_t eod() const = 0;
  // The beginning-of-sequence id (Llama's <|begin_of_text|> or <s>); -1 when there is none.
  virtual int32_t bos() const { return -1; }
  // Megatron's --tokenizer-type name, e.g. "GPT2BPETokenizer".
  virtual std::string type() const = 0;

  std::vector<int32_t> encode(std::string_view text) const {
    std::vector<int32_t> out;
    encode(text, out);
    return out;
  }
};

struct TokenizerConfig {
  std::string type = "GPT2BPETokenizer";
  std::string vocab_file;  // GPT-2: vocab.json
  std::string merge_file;  // GPT-2: merges.txt
  // HuggingFaceTokenizer: tokenizer.json (or a directory holding one); TikTokenizer: the rank file;
  // SentencePieceTokenizer: the .model file.
  std::string tokenizer_model = {};
};

// Loads the tokenizer; every problem with the files (missing, malformed, vocab/merges that do not
// belong together) is a UserError naming the file.
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config);

// The tokenizer types make_tokenizer() accepts, for --tokenizer-type choices.
std::vector<std::string> tokenizer_types();

// True when `s` is well-formed UTF-8 (no surrogates, no overlongs, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);
// `s` with every maximal invalid subpart replaced by U+FFFD (EF BF BD): the WHATWG Encoding
// Standard's UTF-8 decoder, which is also what Python's bytes.decode("utf-8", "replace") and Node's
// TextDecoder do. Returns `s` unchanged when it is valid.
std::string repair_utf8(std::string_view s);

}  // namespace loom::data
