// CLIP's BPE tokenizer (see clip_tokenizer.h).
#include "loom/data/clip_tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "loom/core/error.h"
#include "loom/data/bpe_cache.h"
#include "loom/data/bpe_merges.h"
#include "loom/data/byte_level.h"
#include "loom/data/clip_text_clean.h"
#include "loom/data/files.h"
#include "loom/data/pretokenizer_regex.h"

namespace loom::data {
namespace {

constexpr size_t kMaxMerges = 49152 - 256 - 2;  // open_clip: merges[1:49152-256-2+1]
const char kSot[] = "<start_of_text>";
const char kEot[] = "<end_of_text>";

// The whole decompressed content (gzread passes an uncompressed file through unchanged).
std::string read_gzip_text(const std::string& path) {
  require(file_exists(path), "cannot open CLIP vocabulary '" + path + "': no such file");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) fail("cannot open CLIP vocabulary '" + path + "'");
  gzbuffer(f.get(), 1 << 20);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f.get(), buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(f.get(), &code);
      fail("CLIP vocabulary '" + path + "' is not a readable gzip file: " + (msg ? msg : "read error"));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  // A truncated gzip stream reads as a short file without an error from gzread; gzclose_r reports it.
  int code = 0;
  gzerror(f.get(), &code);
  if (code != Z_OK)
    fail("CLIP vocabulary '" + path + "' is not a readable gzip file (corrupt or truncated)");
  if (gzclose_r(f.release()) != Z_OK)
    fail("CLIP vocabulary '" + path + "' is not a readable gzip file (corrupt or truncated)");
  return out;
}

// The byte-level alphabet in open_clip's vocabulary order: list(bytes_to_unicode()) (printable bytes
// first, then the others, each in byte order).
std::array<int, 256> byte_order() {
  std::array<int, 256> order{};
  int n = 0;
  auto printable = [](int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
  for (int b = 0; b < 256; b++)
    if (printable(b)) order[size_t(n++)] = b;
  for (int b = 0; b < 256; b++)
    if (!printable(b)) order[size_t(n++)] = b;
  return order;
}

std::string unicode_of_byte(int b) {
  std::string s;
  const uint32_t c = gpt2_byte_to_unicode()[size_t(b)];
  if (c < 0x80) {
    s += char(c);
  } else {
    s += char(0xC0 | (c >> 6));
    s += char(0x80 | (c & 0x3F));
  }
  return s;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

ClipTokenizer::~ClipTokenizer() = default;

std::unique_ptr<ClipTokenizer> ClipTokenizer::load(const std::string& path) {
  require(!path.empty(), "CLIPTokenizer needs --tokenizer-model (a bpe_simple_vocab_16e6.txt.gz file)");
  const std::string text = read_gzip_text(path);
  const std::string where = "CLIP vocabulary '" + path + "'";
  if (!is_valid_utf8(text)) fail(where + " is not UTF-8 text (is it a bpe_simple_vocab_16e6.txt.gz file?)");

  // Lines 1 .. kMaxMerges after the header; the file's closing newline ends the last line.
  std::vector<std::string_view> lines;
  const std::string_view all(text);
  size_t pos = all.find('\n');
  if (pos == std::string_view::npos) fail(where + " has no merge lines after its header line");
  pos++;
  while (lines.size() < kMaxMerges && pos < all.size()) {
    size_t end = all.find('\n', pos);
    if (end == std::string_view::npos) end = all.size();
    lines.push_back(all.substr(pos, end - pos));
    pos = end + 1;
  }
  if (lines.empty()) fail(where + " has no merge lines after its header line");

  std::unique_ptr<ClipTokenizer> t(new ClipTokenizer());
  std::unordered_map<std::string, int32_t> encoder;  // unicode spelling -> id; a later duplicate wins
  std::vector<std::string> spelling;
  auto add = [&](std::string s, std::string bytes) {
    const auto id = int32_t(spelling.size());
    encoder[s] = id;
    spelling.push_back(std::move(s));
    t->id_bytes_.push_back(std::move(bytes));
  };
  const std::array<int, 256> order = byte_order();
  for (int b : order) add(unicode_of_byte(b), std::string(1, char(b)));
  for (int b : order) add(unicode_of_byte(b) + "</w>", std::string(1, char(b)) + "</w>");

  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(lines.size());
  std::string bytes_a, bytes_b;
  for (size_t i = 0; i < lines.size(); i++) {
    const std::string line_where = where + " line " + std::to_string(i + 2) + ": ";
    std::vector<std::string_view> parts;
    const std::string_view line = lines[i];
    for (size_t p = 0; p < line.size();) {
      while (p < line.size() && is_ascii_space(line[p])) p++;
      size_t q = p;
      while (q < line.size() && !is_ascii_space(line[q])) q++;
      if (q > p) parts.push_back(line.substr(p, q - p));
      p = q;
    }
    if (parts.empty()) fail(line_where + "empty merge line");
    if (parts.size() != 2) fail(line_where + "a merge is two tokens separated by a space, got " + quoted_symbol(line));
    bytes_a.clear();
    bytes_b.clear();
    if (!byte_level_to_bytes(parts[0], bytes_a) || !byte_level_to_bytes(parts[1], bytes_b))
      fail(line_where + "merge " + quoted_symbol(line) + " has a character outside the byte-level alphabet");
    merges.emplace_back(std::string(parts[0]), std::string(parts[1]));
    add(std::string(parts[0]) + std::string(parts[1]), bytes_a + bytes_b);
  }
  add(kSot, kSot);
  add(kEot, kEot);
  t->sot_ = encoder.at(kSot);
  t->eot_ = encoder.at(kEot);
  for (int b = 0; b < 256; b++) {
    t->byte_id_[size_t(b)] = encoder.at(unicode_of_byte(b));
    t->end_id_[size_t(b)] = encoder.at(unicode_of_byte(b) + "</w>");
  }
  // bpe_ranks = dict(zip(merges, range)): a pair listed twice keeps its later rank (put() overwrites).
  // A merge whose parts are not tokens can never apply, as in open_clip.
  t->merges_ = std::make_unique<BpeMergeTable>();
  t->merges_->init(merges.size());
  for (size_t i = 0; i < merges.size(); i++) {
    const auto a = encoder.find(merges[i].first), b = encoder.find(merges[i].second);
    if (a == encoder.end() || b == encoder.end()) continue;
    t->merges_->put(a->second, b->second, int32_t(i), encoder.at(merges[i].first + merges[i].second));
  }

  const std::string space = clip_regex_space_class();
  // python3-regex, case-insensitive, matches U+0345 COMBINING GREEK YPOGEGRAMMENI (upper case: a letter)
  // by neither [\p{L}] nor [^\s\p{L}\p{N}]: it is dropped like white space.
  const std::string letter = clip_regex_letter_class();
  const std::string number = clip_regex_number_class();
  const std::string pattern = std::string("(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[") + letter +
                              "]+|[" + number + "]|[^" + space + letter + number + "\\x{345}]+";
  try {
    t->regex_ = std::make_unique<RegexSplitter>(pattern);
  } catch (const std::invalid_argument& e) {
    throw std::logic_error(std::string("CLIP pre-tokenizer pattern: ") + e.what());
  }
  t->instance_ = next_tokenizer_instance();
  return t;
}

bool ClipTokenizer::next_piece(std::string_view text, size_t& pos, std::string_view& piece) const {
  while (pos < text.size()) {
    const size_t end = regex_->next(text, pos);
    piece = text.substr(pos, end - pos);
    pos = end;
    // Between matches: after cleaning only spaces and U+0345 (see the pattern) are left there.
    if (piece[0] != ' ' && piece.substr(0, 2) != "\xCD\x85") return true;
  }
  return false;
}

void ClipTokenizer::encode_clean(std::string_view text, std::vector<int32_t>& out) const {
  WordCache& cache = thread_cache(instance_);
  thread_local std::vector<int32_t> symbols, scratch;
  std::string_view piece;
  for (size_t pos = 0; next_piece(text, pos, piece);) {
    if (piece.size() == 1) {
      out.push_back(end_id_[static_cast<unsigned char>(piece[0])]);
      continue;
    }
    if (piece == kSot || piece == kEot) {
      out.push_back(piece == kSot ? sot_ : eot_);
      continue;
    }
    const uint64_t h = hash_bytes(piece.data(), piece.size());
    uint32_t count = 0;
    if (const int32_t* ids = cache.find(piece, h, &count)) {
      out.insert(out.end(), ids, ids + count);
      continue;
    }
    symbols.resize(piece.size());
    for (size_t i = 0; i + 1 < piece.size(); i++) symbols[i] = byte_id_[static_cast<unsigned char>(piece[i])];
    symbols.back() = end_id_[static_cast<unsigned char>(piece.back())];
    scratch.clear();
    bpe_merge_all_occurrences(*merges_, symbols, scratch);
    cache.insert(piece, h, scratch.data(), scratch.size());
    out.insert(out.end(), scratch.begin(), scratch.end());
  }
}

const std::string& ClipTokenizer::clean(std::string_view text) const {
  thread_local std::string cleaned;
  if (is_valid_utf8(text)) {
    clip_clean_text(text, cleaned);
  } else {
    clip_clean_text(repair_utf8(text), cleaned);
  }
  return cleaned;
}

void ClipTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const { encode_clean(clean(text), out); }

void ClipTokenizer::pretokenize(std::string_view text, std::vector<std::string>& out) const {
  const std::string& cleaned = clean(text);
  std::string_view piece;
  for (size_t pos = 0; next_piece(cleaned, pos, piece);) out.emplace_back(piece);
}

std::string ClipTokenizer::decode(std::span<const int32_t> ids) const {
  std::string joined;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= id_bytes_.size())
      fail("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(id_bytes_.size() - 1) +
           ")");
    joined += id_bytes_[size_t(id)];
  }
  std::string out;
  out.reserve(joined.size());
  for (size_t i = 0; i < joined.size();) {
    if (joined.compare(i, 4, "</w>") == 0) {
      out += ' ';
      i += 4;
    } else {
      out += joined[i++];
    }
  }
  return out;
}

void tokenize_caption(const Tokenizer& tok, std::string_view text, int32_t* out, int context,
                      std::vector<int32_t>& scratch) {
  require(context >= 2, "the caption context must hold at least the start and end tokens (got " +
                            std::to_string(context) + ")");
  const int32_t end = tok.eod();
  require(end >= 0, "tokenizer " + tok.type() + " has no end-of-text token to end captions with");
  // Without a start token of its own (the GPT-2 BPE) a caption gets none: starting it with the end token
  // would make argmax pooling pick position 0 and give every caption the same embedding.
  const int32_t start = tok.bos() >= 0 && tok.bos() != end ? tok.bos() : -1;
  scratch.clear();
  tok.encode(text, scratch);
  const size_t first = start >= 0 ? 1 : 0;
  const size_t k = std::min(scratch.size(), size_t(context) - 1 - first);
  if (start >= 0) out[0] = start;
  std::copy(scratch.begin(), scratch.begin() + long(k), out + first);
  out[first + k] = end;
  std::fill(out + first + k + 1, out + context, 0);
}

}  // namespace loom::data
