#pragma once
// CLIP's BPE tokenizer: open_clip's SimpleTokenizer (OpenAI CLIP's, EVA-CLIP's) read from a
// bpe_simple_vocab_16e6.txt.gz file, --tokenizer-type CLIPTokenizer --tokenizer-model FILE.
//
// The file: gzip-compressed UTF-8 text (the same text uncompressed is accepted too), a header line, then
// one merge "a b" per line, written in GPT-2's byte-to-unicode alphabet with "</w>" marking a word's end.
// As open_clip, only lines 1 .. 48,894 (49152-256-2) are used. The vocabulary is
//   the 256 byte characters (in bytes_to_unicode() order), the same 256 followed by "</w>", each merge's
//   concatenation (a string listed twice keeps its later id, as Python's dict does), then
//   <start_of_text> and <end_of_text>
// so 49,408 ids with the real file. A final empty line (the file's closing newline) is no merge.
// Malformed (UserError naming the file): unreadable or corrupt gzip, not UTF-8, no merge line, an empty
// merge line, a merge that is not two parts, a character outside the byte alphabet.
//
// encode(text) as SimpleTokenizer.encode:
//  1. invalid UTF-8 repaired (U+FFFD per maximal invalid subpart, tokenizer.h);
//  2. clip_clean_text(): html unescape twice, strip, white space collapsed, lower-cased, as Python does
//     it, WITHOUT ftfy.fix_text (clip_text_clean.h);
//  3. pre-tokens = the matches of
//       <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     case-insensitively (PCRE2; \s, \p{L}, \p{N} spelled as python3-regex's Unicode 15 classes);
//     white space between them is dropped;
//  4. a pre-token that is a special-token name becomes that id (open_clip's cache: a caption that
//     writes "<end_of_text>" gets the id 49407 there, unlike Loom's other tokenizers); any other is
//     BPE-merged over its UTF-8 bytes, the last byte carrying "</w>", merging every occurrence of the
//     lowest-ranked pair per pass (bpe_merges.h). Results are cached per thread (bpe_cache.h).
// decode(ids): the tokens' bytes with every "</w>" turned into a space (so decode(encode(x)) is the
// cleaned, lower-cased text with a space after each word, not x).
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loom/data/tokenizer.h"

namespace loom::data {

struct BpeMergeTable;
class RegexSplitter;

class ClipTokenizer final : public Tokenizer {
 public:
  static std::unique_ptr<ClipTokenizer> load(const std::string& path);
  ~ClipTokenizer() override;

  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return int64_t(id_bytes_.size()); }
  int32_t eod() const override { return eot_; }
  int32_t bos() const override { return sot_; }
  std::string type() const override { return "CLIPTokenizer"; }

  // Steps 1-3 of encode() only: the pre-tokens of the cleaned text, appended to `out` (for tests).
  void pretokenize(std::string_view text, std::vector<std::string>& out) const;

 private:
  ClipTokenizer() = default;
  void encode_clean(std::string_view text, std::vector<int32_t>& out) const;
  const std::string& clean(std::string_view text) const;  // steps 1-2, into a thread-local buffer
  // The next pre-token of cleaned `text` at or after `pos` (advanced past it); false at the end.
  bool next_piece(std::string_view text, size_t& pos, std::string_view& piece) const;

  std::vector<std::string> id_bytes_;    // id -> raw bytes; "</w>" kept literally
  std::array<int32_t, 256> byte_id_{};   // a byte inside a word
  std::array<int32_t, 256> end_id_{};    // a byte ending a word ("</w>")
  std::unique_ptr<BpeMergeTable> merges_;
  std::unique_ptr<RegexSplitter> regex_;
  int32_t sot_ = -1, eot_ = -1;
  uint64_t instance_ = 0;
};

// open_clip's tokenize(): [bos] + encode(text) + [eod], cut to `context` (the last kept id becomes eod),
// zero padded, into out[0..context). Works with any tokenizer that has an eod; one without a bos of its own
// (the GPT-2 BPE) gets encode(text) + [eod], so that the end token is the caption's only largest id, where
// the text tower pools (open_clip's argmax).
// `scratch` avoids allocating per caption once it has grown.
void tokenize_caption(const Tokenizer& tok, std::string_view text, int32_t* out, int context,
                      std::vector<int32_t>& scratch);

}  // namespace loom::data
