#pragma once
// The byte-level BPE that Hugging Face tokenizer.json files (model "BPE" under a ByteLevel
// pre-tokenizer) and tiktoken rank files describe; hf_tokenizer.cpp and tiktoken_tokenizer.cpp only
// load their formats into a ByteLevelBpeSpec.
//
// encode():
//  1. Invalid UTF-8 is repaired (U+FFFD per maximal invalid subpart, see tokenizer.h).
//  2. Optionally (Meta's Llama 3 tokenizer.py around tiktoken) the text is cut into chunks of 400,000
//     code points, and each chunk wherever a run of white space or of non-white space (Python's
//     str.isspace) grows past 25,000 code points; each part is encoded on its own. This bounds the
//     BPE work on pathological input the way the reference does, with the reference's ids.
//  3. Pre-tokenisation by the spec's regex (pretokenizer_regex.h); without one the whole text is one
//     piece.
//  4. A piece that is itself a vocabulary entry becomes that id when ignore_merges is set (Hugging
//     Face's ignore_merges; tiktoken always does this); otherwise its bytes are BPE-merged, lowest
//     (rank, position) pair first (bpe_merges.h). Results are cached per thread (bpe_cache.h).
//     Hugging Face and tiktoken do not cut a long pre-token (a 50 MB line of letters is one), so neither
//     does this: its ids are the whole word's BPE. Pieces over 64 bytes take an O(n log n) loop: when the
//     merges only make pairs of higher rank (merges_make_only_higher_pairs, true of trained files) the
//     rank-bucket pass GPT-2's loop uses (the same ids; 16 bytes of memory per input byte, given back
//     afterwards), otherwise a heap of (rank, position) (over 64k symbols, a heap of positions per rank).
// Added/special tokens written in the text are ordinary text, as the interface requires.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loom/data/bpe_merges.h"
#include "loom/data/string_id_map.h"
#include "loom/data/tokenizer.h"

namespace loom::data {

class RegexSplitter;

using BytesToId = StringIdMap;

struct ByteLevelBpeSpec {
  std::string type;                   // Megatron's --tokenizer-type name
  std::vector<std::string> id_bytes;  // id -> the bytes decode() gives (added tokens: their text)
  std::vector<bool> id_known;         // false for ids no token has (decode() refuses them)
  BytesToId vocab;                    // the BPE vocabulary: bytes -> id
  std::array<int32_t, 256> byte_id{};  // single byte -> id
  BpeMergeTable merges;
  bool ignore_merges = false;
  std::string pattern;               // PCRE2 pattern (already js_compatible_pattern()); empty: no split
  bool add_prefix_space = false;     // Hugging Face ByteLevel: a space before text not starting with one
  bool meta_llama3_chunking = false;  // step 2 above
  int32_t eod = -1, bos = -1;
};

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  // `pattern` must compile (callers check with RegexSplitter first to report a UserError).
  explicit ByteLevelBpeTokenizer(ByteLevelBpeSpec spec);
  ~ByteLevelBpeTokenizer() override;

  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return int64_t(spec_.id_bytes.size()); }
  int32_t eod() const override { return spec_.eod; }
  int32_t bos() const override { return spec_.bos; }
  std::string type() const override { return spec_.type; }

  // The id of a BPE vocabulary entry given by its raw bytes, or -1.
  int32_t token_id(std::string_view bytes) const;

 private:
  void encode_part(std::string_view text, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  ByteLevelBpeSpec spec_;
  std::unique_ptr<RegexSplitter> regex_;
  uint64_t instance_ = 0;  // distinguishes tokenizers in the per-thread caches
  bool merges_monotone_ = false;  // merges_make_only_higher_pairs()
};

// Meta's Llama 3 tokenizer.py split (step 2 above): calls `part` with each piece of valid UTF-8
// `text`, in order. Exposed for tests.
void split_like_meta_llama3(std::string_view text, const std::function<void(std::string_view)>& part);

}  // namespace loom::data
