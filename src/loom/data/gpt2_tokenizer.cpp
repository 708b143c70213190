#include "loom/data/gpt2_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "loom/core/error.h"
#include "loom/data/bpe_cache.h"
#include "loom/data/bpe_merges.h"
#include "loom/data/byte_level.h"
#include "loom/data/files.h"
#include "loom/data/pretokenizer_regex.h"

namespace loom::data {

// ---------------------------------------------------------------------------------------------
// Loading

Gpt2BpeTokenizer::~Gpt2BpeTokenizer() = default;

std::unique_ptr<Gpt2BpeTokenizer> Gpt2BpeTokenizer::load(const std::string& vocab_file,
                                                         const std::string& merge_file) {
  require(!vocab_file.empty(), "GPT2BPETokenizer needs --vocab-file (GPT-2's vocab.json)");
  require(!merge_file.empty(), "GPT2BPETokenizer needs --merge-file (GPT-2's merges.txt)");
  std::unique_ptr<Gpt2BpeTokenizer> t(new Gpt2BpeTokenizer());

  // vocab.json: {"symbol": id, ...}
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_whole_file(vocab_file, "vocab file"));
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    if (what.rfind("[json.exception.", 0) == 0 && what.find("] ") != std::string::npos) what = what.substr(what.find("] ") + 2);
    fail("vocab file '" + vocab_file + "': malformed JSON (" + what + ")");
  }
  if (!vocab.is_object() || vocab.empty())
    fail("vocab file '" + vocab_file + "': expected a JSON object of token -> id (GPT-2's vocab.json)");
  const size_t n = vocab.size();
  if (n > size_t(std::numeric_limits<int32_t>::max())) fail("vocab file '" + vocab_file + "': too many entries");
  t->id_bytes_.assign(n, std::string());
  std::vector<bool> seen(n, false);
  std::string bytes;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer())
      fail("vocab file '" + vocab_file + "': the id of " + quoted_symbol(it.key()) + " is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || uint64_t(id) >= n || seen[size_t(id)])
      fail("vocab file '" + vocab_file + "': ids must be 0.." + std::to_string(n - 1) + ", each once (" +
           quoted_symbol(it.key()) + " has " + std::to_string(id) + ")");
    if (!byte_level_to_bytes(it.key(), bytes) || bytes.empty())
      fail("vocab file '" + vocab_file + "': " + quoted_symbol(it.key()) +
           " is not a byte-level BPE symbol (is this GPT-2's vocab.json?)");
    seen[size_t(id)] = true;
    t->id_bytes_[size_t(id)] = bytes;
    t->bytes_id_[bytes] = int32_t(id);
  }
  for (int b = 0; b < 256; b++) {
    auto it = t->bytes_id_.find(std::string(1, char(b)));
    if (it == t->bytes_id_.end())
      fail("vocab file '" + vocab_file + "': no entry for byte " + std::to_string(b) +
           " (a byte-level BPE vocabulary has all 256)");
    t->byte_id_[size_t(b)] = it->second;
  }
  auto eod = t->bytes_id_.find("<|endoftext|>");
  if (eod == t->bytes_id_.end()) fail("vocab file '" + vocab_file + "': no '<|endoftext|>' entry (the EOD token)");
  t->eod_ = eod->second;

  // merges.txt: one "A B" per line after the "#version" line.
  const std::string text = read_whole_file(merge_file, "merge file");
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    size_t nl = text.find('\n', start);
    lines.emplace_back(std::string_view(text).substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (lines.size() < 2) fail("merge file '" + merge_file + "': no merges (expected GPT-2's merges.txt)");
  t->merges_ = std::make_unique<BpeMergeTable>();
  t->merges_->init(lines.size());
  std::string left, right;
  for (size_t li = 1; li + 1 < lines.size(); li++) {
    std::string_view line = lines[li];
    std::vector<std::string_view> parts;
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && space(line[i])) i++;
      size_t j = i;
      while (j < line.size() && !space(line[j])) j++;
      if (j > i) parts.push_back(line.substr(i, j - i));
      i = j;
    }
    if (parts.empty()) continue;  // never matches a pair in the reference either
    const std::string where = "merge file '" + merge_file + "' line " + std::to_string(li + 1) + ": ";
    if (parts.size() != 2) fail(where + "expected two symbols separated by a space");
    if (!byte_level_to_bytes(parts[0], left) || !byte_level_to_bytes(parts[1], right))
      fail(where + "not a byte-level BPE merge (is this GPT-2's merges.txt?)");
    auto a = t->bytes_id_.find(left), b = t->bytes_id_.find(right), c = t->bytes_id_.find(left + right);
    if (a == t->bytes_id_.end() || b == t->bytes_id_.end() || c == t->bytes_id_.end())
      fail(where + "merge " + quoted_symbol(std::string(parts[0]) + " " + std::string(parts[1])) +
           " uses or makes a token that is not in '" + vocab_file + "' (vocab and merges do not match)");
    t->merges_->put(a->second, b->second, int32_t(li), c->second);
  }
  t->regex_ = std::make_unique<RegexSplitter>(kGpt2SplitPattern);
  t->instance_ = next_tokenizer_instance();
  return t;
}

int32_t Gpt2BpeTokenizer::token_id(std::string_view bytes) const {
  auto it = bytes_id_.find(std::string(bytes));
  return it == bytes_id_.end() ? -1 : it->second;
}

// ---------------------------------------------------------------------------------------------
// BPE

void Gpt2BpeTokenizer::bpe(std::string_view piece, std::vector<int32_t>& out, int algorithm) const {
  if (piece.empty()) return;
  if (algorithm == 0) algorithm = piece.size() <= 64 ? 1 : 2;
  if (algorithm == 1)
    bpe_scan(piece, out);
  else
    bpe_heap(piece, out);
}

// The reference loop (bpe_merges.h): find the lowest-ranked adjacent pair, merge all its occurrences.
void Gpt2BpeTokenizer::bpe_scan(std::string_view piece, std::vector<int32_t>& out) const {
  thread_local std::vector<int32_t> word;
  word.resize(piece.size());
  for (size_t i = 0; i < piece.size(); i++) word[i] = byte_id_[static_cast<unsigned char>(piece[i])];
  bpe_merge_all_occurrences(*merges_, word, out, 1);
}

void Gpt2BpeTokenizer::bpe_heap(std::string_view piece, std::vector<int32_t>& out) const {
  thread_local std::vector<int32_t> word;
  word.resize(piece.size());
  for (size_t i = 0; i < piece.size(); i++) word[i] = byte_id_[static_cast<unsigned char>(piece[i])];
  bpe_merge_all_occurrences(*merges_, word, out, 2);
}

// ---------------------------------------------------------------------------------------------
// Encode / decode

void Gpt2BpeTokenizer::split(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = regex_->next(text, pos);
    out.emplace_back(pos, end - pos);
    pos = end;
  }
}

void Gpt2BpeTokenizer::encode_valid(std::string_view text, std::vector<int32_t>& out) const {
  WordCache& cache = thread_cache(instance_);
  thread_local std::vector<int32_t> scratch;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = regex_->next(text, pos);
    const std::string_view piece = text.substr(pos, end - pos);
    pos = end;
    if (piece.size() == 1) {
      out.push_back(byte_id_[static_cast<unsigned char>(piece[0])]);
      continue;
    }
    const uint64_t h = hash_bytes(piece.data(), piece.size());
    uint32_t count = 0;
    if (const int32_t* ids = cache.find(piece, h, &count)) {
      out.insert(out.end(), ids, ids + count);
      continue;
    }
    scratch.clear();
    bpe(piece, scratch);
    cache.insert(piece, h, scratch.data(), scratch.size());
    out.insert(out.end(), scratch.begin(), scratch.end());
  }
}

void Gpt2BpeTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  if (is_valid_utf8(text)) {
    encode_valid(text, out);
  } else {
    const std::string repaired = repair_utf8(text);
    encode_valid(repaired, out);
  }
}

std::string Gpt2BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= id_bytes_.size())
      fail("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(id_bytes_.size() - 1) +
           ")");
    out += id_bytes_[size_t(id)];
  }
  return out;
}

}  // namespace loom::data
