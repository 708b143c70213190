#pragma once
// GPT-2's byte-level BPE (OpenAI's encoder.py, as used by Megatron's GPT2BPETokenizer and the npm
// package gpt-3-encoder), from vocab.json + merges.txt.
//
//  1. Invalid UTF-8 is repaired (U+FFFD per maximal invalid subpart, see tokenizer.h).
//  2. Pre-tokenisation with GPT-2's pattern
//       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     run by PCRE2 (UTF + UCP, JIT). `\s` is spelled out as JavaScript's white-space set (the
//     reference encoder is gpt-3-encoder, a JavaScript `/gu` regex): TAB LF VT FF CR SP U+00A0
//     U+1680 U+2000-U+200A U+2028 U+2029 U+202F U+205F U+3000 U+FEFF. (Python's `regex` module,
//     used by Megatron, follows Unicode's White_Space property instead: it adds U+0085 and lacks
//     U+FEFF.) \p{L} and \p{N} follow Node 20's Unicode 17 tables: the letters and numbers
//     assigned since PCRE2 10.42's Unicode 14 are listed explicitly in the pattern. The result was
//     checked against the reference's own regex for every code point.
//  3. Each piece is BPE-merged over its bytes. Working on bytes is the same as working on OpenAI's
//     byte-to-unicode strings, because that map is a bijection applied byte by byte. A merge pass
//     joins every occurrence of the lowest-ranked adjacent pair, left to right without overlap,
//     exactly as the reference loop does; long pieces use an equivalent heap-ordered version.
//     Results are cached per thread and per tokenizer (the reference caches per process).
//
// Loading checks that the files belong together: every merge's two parts and their join must be
// vocabulary entries and all 256 single bytes must be present; otherwise UserError naming the file
// and line ("vocab and merges do not match").
//
// merges.txt is read as Megatron and gpt-3-encoder read it: split at '\n', drop the first line
// (#version) and the last element (empty when the file ends in a newline).
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loom/data/byte_level.h"
#include "loom/data/tokenizer.h"

namespace loom::data {

struct BpeMergeTable;
class RegexSplitter;

class Gpt2BpeTokenizer final : public Tokenizer {
 public:
  static std::unique_ptr<Gpt2BpeTokenizer> load(const std::string& vocab_file, const std::string& merge_file);
  ~Gpt2BpeTokenizer() override;

  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return int64_t(id_bytes_.size()); }
  int32_t eod() const override { return eod_; }
  std::string type() const override { return "GPT2BPETokenizer"; }

  // Pre-tokenisation only: the byte ranges of the pieces of valid UTF-8 `text`, appended to `out`
  // as (offset, length) pairs.
  void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  // BPE of one piece (no cache). algorithm 0 = automatic, 1 = rescan per pass, 2 = rank buckets (long pieces).
  void bpe(std::string_view piece, std::vector<int32_t>& out, int algorithm = 0) const;
  // The id of a vocabulary entry given by its raw bytes, or -1.
  int32_t token_id(std::string_view bytes) const;
  const std::string& token_bytes(int32_t id) const { return id_bytes_.at(size_t(id)); }

 private:
  Gpt2BpeTokenizer() = default;
  void bpe_scan(std::string_view piece, std::vector<int32_t>& out) const;
  void bpe_heap(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_valid(std::string_view text, std::vector<int32_t>& out) const;

  std::vector<std::string> id_bytes_;         // id -> raw bytes
  std::unordered_map<std::string, int32_t> bytes_id_;  // raw bytes -> id
  std::array<int32_t, 256> byte_id_{};        // single byte -> id
  std::unique_ptr<BpeMergeTable> merges_;
  std::unique_ptr<RegexSplitter> regex_;
  int32_t eod_ = -1;
  uint64_t instance_ = 0;  // distinguishes tokenizers in the per-thread caches
};

}  // namespace loom::data
