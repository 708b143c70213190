#include "loom/data/tiktoken_tokenizer.h"

#include <algorithm>
#include <array>
#include <limits>

#include "loom/core/error.h"
#include "loom/data/byte_level_bpe.h"
#include "loom/data/files.h"
#include "loom/data/pretokenizer_regex.h"

namespace loom::data {

const char kLlama3SplitPattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

std::vector<std::string> llama3_special_tokens() {
  std::vector<std::string> t = {"<|begin_of_text|>",
                                "<|end_of_text|>",
                                "<|reserved_special_token_0|>",
                                "<|reserved_special_token_1|>",
                                "<|reserved_special_token_2|>",
                                "<|reserved_special_token_3|>",
                                "<|start_header_id|>",
                                "<|end_header_id|>",
                                "<|reserved_special_token_4|>",
                                "<|eot_id|>"};
  for (int i = 5; i < 256 - 5; i++) t.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
  return t;
}

namespace {

// Strict base64 (RFC 4648 with padding, as Python's b64decode accepts it); false when malformed.
bool base64_decode(std::string_view in, std::string& out) {
  static const auto table = [] {
    std::array<int8_t, 256> t;
    t.fill(-1);
    const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++) t[static_cast<unsigned char>(chars[i])] = int8_t(i);
    return t;
  }();
  out.clear();
  if (in.size() % 4 != 0) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size(); i++) {
    const char c = in[i];
    if (c == '=') {
      // at most two, only at the end
      if (i + 2 < in.size() || (i + 1 < in.size() && in[i + 1] != '=')) return false;
      break;
    }
    const int v = table[static_cast<unsigned char>(c)];
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  return true;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

std::unique_ptr<Tokenizer> load_tiktoken_tokenizer(const std::string& path) {
  require(!path.empty(), "TikTokenizer needs --tokenizer-model (a tiktoken rank file such as Llama 3's tokenizer.model)");
  const std::string text = read_whole_file(path, "tokenizer file");
  const size_t line_count = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
  ByteLevelBpeSpec spec;
  spec.type = "TikTokenizer";
  std::vector<int64_t> rank_line;  // rank -> line number, to report duplicates
  // Start-up time: no rehashing of Llama 3's 128k ranks (capped: a file of blank lines is no vocabulary).
  spec.vocab.reserve(std::min(line_count, size_t(1) << 20));
  std::string bytes;
  size_t line_no = 0;
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line = std::string_view(text).substr(start, nl - start);
    start = nl + 1;
    line_no++;
    std::vector<std::string_view> parts;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && is_blank(line[i])) i++;
      size_t j = i;
      while (j < line.size() && !is_blank(line[j])) j++;
      if (j > i) parts.push_back(line.substr(i, j - i));
      i = j;
    }
    if (parts.empty()) continue;  // blank lines are skipped, as load_tiktoken_bpe does
    auto where = [&] { return "tokenizer file '" + path + "' line " + std::to_string(line_no) + ": "; };  // on errors only
    const char* hint = spec.vocab.empty() ? " (is this a SentencePiece model? use --tokenizer-type SentencePieceTokenizer)" : "";
    if (parts.size() != 2) fail(where() + "expected '<base64 token> <rank>'" + hint);
    if (!base64_decode(parts[0], bytes) || bytes.empty()) fail(where() + "the token is not base64" + hint);
    int64_t rank = 0;
    for (char c : parts[1]) {
      if (c < '0' || c > '9' || rank > std::numeric_limits<int32_t>::max() / 10)
        fail(where() + "the rank '" + std::string(parts[1]) + "' is not a non-negative integer");
      rank = rank * 10 + (c - '0');
    }
    if (!spec.vocab.insert(bytes, int32_t(rank))) fail(where() + "the token is listed twice");
    // Ranks are 0..n-1 over the file's lines: a larger one is wrong before it costs a table that large.
    if (size_t(rank) >= line_count)
      fail(where() + "rank " + std::to_string(rank) + " is beyond the file's " + std::to_string(line_count) +
           " lines (the ranks must be 0..n-1)");
    if (size_t(rank) >= rank_line.size()) rank_line.resize(size_t(rank) + 1, 0);
    if (rank_line[size_t(rank)] != 0)
      fail(where() + "rank " + std::to_string(rank) + " is also on line " + std::to_string(rank_line[size_t(rank)]));
    rank_line[size_t(rank)] = int64_t(line_no);
    if (size_t(rank) >= spec.id_bytes.size()) spec.id_bytes.resize(size_t(rank) + 1);
    spec.id_bytes[size_t(rank)] = bytes;
  }
  const size_t n = spec.vocab.size();
  if (n == 0) fail("tokenizer file '" + path + "': no ranks (expected lines '<base64 token> <rank>')");
  if (rank_line.size() != n)
    fail("tokenizer file '" + path + "': the ranks must be 0.." + std::to_string(n - 1) + " (rank " +
         std::to_string(rank_line.size() - 1) + " is listed)");
  const std::vector<std::string> specials = llama3_special_tokens();
  spec.id_bytes.resize(n + specials.size());
  spec.id_known.assign(n + specials.size(), true);
  for (size_t i = 0; i < specials.size(); i++) spec.id_bytes[n + i] = specials[i];
  for (int b = 0; b < 256; b++) {
    const char c = char(b);
    spec.byte_id[size_t(b)] = spec.vocab.find(std::string_view(&c, 1));
    if (spec.byte_id[size_t(b)] < 0)
      fail("tokenizer file '" + path + "': no rank for byte " + std::to_string(b) + " (tiktoken needs all 256)");
  }
  // The pairs BPE can ever look up are two tokens whose concatenation is a token; their rank is that
  // token's (what tiktoken looks up on the concatenated bytes).
  size_t pairs = 0;
  for (const auto& s : spec.id_bytes) pairs += s.empty() ? 0 : s.size() - 1;
  spec.merges.init(pairs);
  // Start-up time: the lookups of a token's cuts are hashed and prefetched before any is made, so their
  // cache misses overlap (the whole loop waited for one miss after another).
  constexpr size_t kMaxPrefetched = 64;
  uint64_t left_hash[kMaxPrefetched], right_hash[kMaxPrefetched];
  // The merge table's slots likewise: pairs wait here, their slot prefetched, and are put in order.
  constexpr size_t kPending = 32;
  std::array<std::pair<int32_t, int32_t>, kPending> pending_pair;
  std::array<int32_t, kPending> pending_id;
  size_t pending = 0;
  auto flush = [&] {
    for (size_t i = 0; i < pending; i++)
      spec.merges.put(pending_pair[i].first, pending_pair[i].second, pending_id[i], pending_id[i]);
    pending = 0;
  };
  for (size_t id = 0; id < n; id++) {
    const std::string_view t = spec.id_bytes[id];
    const size_t prefetched = std::min(t.size(), kMaxPrefetched);
    for (size_t cut = 1; cut < prefetched; cut++) {
      left_hash[cut] = StringIdMap::hash(t.substr(0, cut));
      right_hash[cut] = StringIdMap::hash(t.substr(cut));
      spec.vocab.prefetch(left_hash[cut]);
      spec.vocab.prefetch(right_hash[cut]);
    }
    for (size_t cut = 1; cut < t.size(); cut++) {
      const bool have = cut < prefetched;
      const int32_t l = have ? spec.vocab.find(t.substr(0, cut), left_hash[cut]) : spec.vocab.find(t.substr(0, cut));
      if (l < 0) continue;
      const int32_t r = have ? spec.vocab.find(t.substr(cut), right_hash[cut]) : spec.vocab.find(t.substr(cut));
      if (r < 0) continue;
      spec.merges.prefetch(l, r);
      pending_pair[pending] = {l, r};
      pending_id[pending++] = int32_t(id);
      if (pending == kPending) flush();
    }
  }
  flush();
  spec.ignore_merges = true;
  spec.pattern = js_compatible_pattern(kLlama3SplitPattern);
  spec.meta_llama3_chunking = true;
  spec.bos = int32_t(n);
  spec.eod = int32_t(n + 1);
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(spec));
}

}  // namespace loom::data
