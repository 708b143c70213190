#include "loom/data/byte_level_bpe.h"

#include <limits>

#include "loom/core/error.h"
#include "loom/data/bpe_cache.h"
#include "loom/data/byte_level.h"
#include "loom/data/pretokenizer_regex.h"

namespace loom::data {
namespace {

// Meta's TIKTOKEN_MAX_ENCODE_CHARS and MAX_NO_WHITESPACES_CHARS (llama/tokenizer.py).
constexpr size_t kMetaChunkChars = 400'000;
constexpr size_t kMetaMaxRunChars = 25'000;

// Python's str.isspace(): bidirectional class WS, B or S, or category Zs.
bool python_isspace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

void split_like_meta_llama3(std::string_view text, const std::function<void(std::string_view)>& part) {
  if (text.size() <= kMetaMaxRunChars) {  // fewer code points than bytes: nothing to cut
    if (!text.empty()) part(text);
    return;
  }
  size_t chunk_chars = 0, run_chars = 0, slice_start = 0;
  bool run_is_space = false;
  for (size_t i = 0; i < text.size();) {
    const size_t at = i;
    const uint32_t cp = next_code_point(text, i);  // valid UTF-8: never fails
    const bool is_space = python_isspace(cp);
    if (chunk_chars == kMetaChunkChars) {  // s[i : i + 400000] ends here: the run count starts afresh
      part(text.substr(slice_start, at - slice_start));
      slice_start = at;
      chunk_chars = 0;
    }
    if (chunk_chars == 0) {
      run_is_space = is_space;
      run_chars = 0;
    }
    chunk_chars++;
    if (run_is_space != is_space) {
      run_chars = 1;
      run_is_space = is_space;
    } else if (++run_chars > kMetaMaxRunChars) {
      part(text.substr(slice_start, at - slice_start));
      slice_start = at;
      run_chars = 1;
    }
  }
  part(text.substr(slice_start));
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeSpec spec) : spec_(std::move(spec)) {
  if (!spec_.pattern.empty()) regex_ = std::make_unique<RegexSplitter>(spec_.pattern);
  instance_ = next_tokenizer_instance();
  merges_monotone_ = merges_make_only_higher_pairs(spec_.merges, spec_.id_bytes.size());
}

ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

int32_t ByteLevelBpeTokenizer::token_id(std::string_view bytes) const {
  return spec_.vocab.find(bytes);
}

void ByteLevelBpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(spec_.byte_id[static_cast<unsigned char>(piece[0])]);
    return;
  }
  WordCache& cache = thread_cache(instance_);
  const uint64_t h = hash_bytes(piece.data(), piece.size());
  uint32_t count = 0;
  if (const int32_t* ids = cache.find(piece, h, &count)) {
    out.insert(out.end(), ids, ids + count);
    return;
  }
  const size_t first = out.size();
  if (spec_.ignore_merges) {
    if (const int32_t id = spec_.vocab.find(piece); id >= 0) out.push_back(id);
  }
  if (out.size() == first) {
    if (piece.size() > size_t(std::numeric_limits<int32_t>::max()))
      fail("a pre-token of " + std::to_string(piece.size()) + " bytes is too long to tokenize (limit 2 GiB)");
    thread_local std::vector<int32_t> symbols;
    symbols.resize(piece.size());
    for (size_t i = 0; i < piece.size(); i++) symbols[i] = spec_.byte_id[static_cast<unsigned char>(piece[i])];
    if (merges_monotone_ && piece.size() > 64)
      bpe_merge_all_occurrences(spec_.merges, symbols, out, /*algorithm=*/2);
    else
      bpe_merge_lowest_first(spec_.merges, symbols, out);
    if (piece.size() > 4096) symbols = {};  // do not keep a huge buffer per thread
  }
  cache.insert(piece, h, out.data() + first, out.size() - first);
}

void ByteLevelBpeTokenizer::encode_part(std::string_view text, std::vector<int32_t>& out) const {
  if (!regex_) {
    if (!text.empty()) encode_piece(text, out);
    return;
  }
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = regex_->next(text, pos);
    encode_piece(text.substr(pos, end - pos), out);
    pos = end;
  }
}

void ByteLevelBpeTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = repair_utf8(text);
    text = repaired;
  }
  if (spec_.add_prefix_space && !text.empty() && text[0] != ' ') {
    repaired = " " + std::string(text);
    text = repaired;
  }
  if (spec_.meta_llama3_chunking)
    split_like_meta_llama3(text, [&](std::string_view part) { encode_part(part, out); });
  else
    encode_part(text, out);
}

std::string ByteLevelBpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= spec_.id_bytes.size() || !spec_.id_known[size_t(id)])
      fail("token id " + std::to_string(id) + " is not in the vocabulary (" + std::to_string(spec_.id_bytes.size()) +
           " ids)");
    out += spec_.id_bytes[size_t(id)];
  }
  return out;
}

}  // namespace loom::data
