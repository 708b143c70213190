#include "loom/data/gpt2_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "loom/core/error.h"

namespace loom::data {
namespace {

// ---------------------------------------------------------------------------------------------
// Byte <-> unicode (OpenAI's bytes_to_unicode)

std::array<uint32_t, 256> make_byte_to_unicode() {
  std::array<uint32_t, 256> map{};
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; b++) printable[size_t(b)] = true;
  for (int b = 0xA1; b <= 0xAC; b++) printable[size_t(b)] = true;
  for (int b = 0xAE; b <= 0xFF; b++) printable[size_t(b)] = true;
  uint32_t n = 0;
  for (int b = 0; b < 256; b++) map[size_t(b)] = printable[size_t(b)] ? uint32_t(b) : 256 + n++;
  return map;
}

// Decodes one code point of valid UTF-8 at s[i]; advances i. Returns UINT32_MAX on malformed input.
uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + size_t(len) > s.size()) return UINT32_MAX;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
  for (int k = 1; k < len; k++) {
    const auto d = static_cast<unsigned char>(s[i + size_t(k)]);
    if ((d & 0xC0) != 0x80) return UINT32_MAX;
    cp = (cp << 6) | (d & 0x3Fu);
  }
  i += size_t(len);
  return cp;
}

// The raw bytes a vocab.json / merges.txt symbol stands for; false if it is not a byte-level string.
bool symbol_to_bytes(std::string_view symbol, std::string& out) {
  static const auto inverse = [] {
    std::array<int, 324> inv;
    inv.fill(-1);
    const auto& fwd = gpt2_byte_to_unicode();
    for (int b = 0; b < 256; b++) inv[fwd[size_t(b)]] = b;
    return inv;
  }();
  out.clear();
  size_t i = 0;
  while (i < symbol.size()) {
    uint32_t cp = next_code_point(symbol, i);
    if (cp >= inverse.size() || inverse[cp] < 0) return false;
    out += char(inverse[cp]);
  }
  return true;
}

std::string symbol_for_message(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open " + std::string(what) + " '" + path + "': " + std::strerror(errno));
  std::ostringstream s;
  s << f.rdbuf();
  if (f.bad()) fail("cannot read " + std::string(what) + " '" + path + "'");
  return s.str();
}

inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t(n) * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  h = (h ^ v) * 0x94d049bb133111ebull;
  h ^= h >> 32;
  return h ? h : 1;
}

// ---------------------------------------------------------------------------------------------
// Per-thread cache of BPE results, keyed by piece bytes.

class WordCache {
 public:
  WordCache() { reset(1u << 12); }

  const int32_t* find(std::string_view key, uint64_t h, uint32_t* n) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return nullptr;
      if (s.hash == h && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0) {
        *n = s.n_ids;
        return ids_.data() + s.ids_off;
      }
    }
  }

  void insert(std::string_view key, uint64_t h, const int32_t* ids, size_t n) {
    if (key.size() > kMaxKey) return;
    if ((count_ + 1) * 2 > slots_.size() || keys_.size() > kMaxKeyBytes) {
      if (slots_.size() >= kMaxSlots || keys_.size() > kMaxKeyBytes) {
        reset(slots_.size());  // full: start over rather than grow without bound
      } else {
        grow();
      }
    }
    Slot s{h, uint32_t(keys_.size()), uint32_t(key.size()), uint32_t(ids_.size()), uint32_t(n)};
    keys_.append(key);
    ids_.insert(ids_.end(), ids, ids + n);
    place(s);
    count_++;
  }

 private:
  static constexpr size_t kMaxSlots = size_t(1) << 20;
  static constexpr size_t kMaxKey = 4096;
  static constexpr size_t kMaxKeyBytes = size_t(64) << 20;
  struct Slot {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, n_ids;
  };
  void reset(size_t slots) {
    slots_.assign(slots, Slot{0, 0, 0, 0, 0});
    mask_ = slots - 1;
    keys_.clear();
    ids_.clear();
    count_ = 0;
  }
  void place(const Slot& s) {
    size_t i = s.hash & mask_;
    while (slots_[i].hash != 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2, Slot{0, 0, 0, 0, 0});
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& s : old)
      if (s.hash != 0) place(s);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
  std::string keys_;
  std::vector<int32_t> ids_;
};

std::atomic<uint64_t> g_next_instance{1};

WordCache& thread_cache(uint64_t instance) {
  struct Entry {
    uint64_t instance;
    std::unique_ptr<WordCache> cache;
  };
  thread_local std::vector<Entry> caches;
  thread_local uint64_t last_instance = 0;
  thread_local WordCache* last = nullptr;
  if (last_instance == instance && last) return *last;
  WordCache* found = nullptr;
  for (auto& e : caches)
    if (e.instance == instance) found = e.cache.get();
  if (!found) {
    if (caches.size() >= 4) caches.erase(caches.begin());  // bounded: oldest tokenizer's cache goes
    caches.push_back(Entry{instance, std::make_unique<WordCache>()});
    found = caches.back().cache.get();
  }
  last_instance = instance;
  last = found;
  return *found;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// UTF-8 validation and repair

namespace {
// A UTF-8 lead byte: how many continuation bytes follow and the allowed range of the first of them
// (excluding overlongs, surrogates and code points above U+10FFFF). False for a byte that cannot lead.
bool utf8_lead(unsigned char c, int& more, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    more = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    more = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    more = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return false;
  }
  return true;
}
}  // namespace

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t v;
      std::memcpy(&v, p + i, 8);
      if (v & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    unsigned char lo, hi;
    int more;
    if (!utf8_lead(c, more, lo, hi)) {
      return false;
    }
    if (i + size_t(more) >= n) return false;  // truncated at the end
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (int k = 2; k <= more; k++)
      if ((p[i + size_t(k)] & 0xC0) != 0x80) return false;
    i += size_t(more) + 1;
  }
  return true;
}

std::string repair_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  static const char kReplacement[] = "\xEF\xBF\xBD";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  std::string out;
  out.reserve(n + 16);
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      out += char(c);
      i++;
      continue;
    }
    unsigned char lo, hi;
    int more;
    if (!utf8_lead(c, more, lo, hi)) {
      out += kReplacement;  // a byte that can never start a sequence
      i++;
      continue;
    }
    // Consume continuation bytes while they fit; the first one has the narrowed range.
    size_t j = i + 1;
    int got = 0;
    while (got < more && j < n) {
      const unsigned char d = p[j];
      const bool ok = got == 0 ? (d >= lo && d <= hi) : (d & 0xC0) == 0x80;
      if (!ok) break;
      j++;
      got++;
    }
    if (got == more) {
      out.append(s.data() + i, j - i);
    } else {
      out += kReplacement;  // the maximal subpart [i, j) is one replacement; p[j] is looked at anew
    }
    i = j;
  }
  return out;
}

const std::array<uint32_t, 256>& gpt2_byte_to_unicode() {
  static const std::array<uint32_t, 256> map = make_byte_to_unicode();
  return map;
}

// ---------------------------------------------------------------------------------------------
// Merge table: (left id, right id) -> (rank, merged id), open addressing.

struct Gpt2BpeTokenizer::MergeTable {
  struct Slot {
    uint64_t key = ~0ull;
    int32_t rank = 0, merged = 0;
  };
  std::vector<Slot> slots;
  uint64_t mask = 0;

  static uint64_t key_of(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  void init(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    slots.assign(cap, Slot{});
    mask = cap - 1;
  }
  // Inserts or overwrites (a later duplicate wins, like Python's dict(zip(merges, range))).
  void put(int32_t a, int32_t b, int32_t rank, int32_t merged) {
    const uint64_t k = key_of(a, b);
    for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k || slots[i].key == ~0ull) {
        slots[i] = Slot{k, rank, merged};
        return;
      }
    }
  }
  const Slot* get(int32_t a, int32_t b) const {
    const uint64_t k = key_of(a, b);
    for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots[i];
      if (s.key == k) return &s;
      if (s.key == ~0ull) return nullptr;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// The pre-tokenisation regex.

namespace {
// JavaScript's \s (WhiteSpace + LineTerminator, ECMA-262), as a character-class body.
#define LOOM_JS_SPACE "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"
// Code points that are letters (L) or numbers (N) in the Unicode version of the reference (Node 20's
// ICU: Unicode 17) but unassigned in the tables of Debian 12's PCRE2 10.42 (Unicode 14), generated by
// comparing the two over every code point. Listing them is harmless once PCRE2 knows them itself.
#define LOOM_NEW_LETTERS \
    "\\x{88F}\\x{C5C}\\x{CDC}\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CF}\\x{A7D2}\\x{A7D4}\\x{A7DA}-\\x{A7DC}" \
    "\\x{A7F1}\\x{105C0}-\\x{105F3}\\x{10940}-\\x{10959}\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}" \
    "\\x{10EC2}-\\x{10EC7}\\x{1123F}-\\x{11240}\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}" \
    "\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}\\x{113D3}\\x{11BC0}-\\x{11BE0}\\x{11DB0}-\\x{11DDB}" \
    "\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}\\x{1342F}\\x{13441}-\\x{13446}" \
    "\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}\\x{16D40}-\\x{16D6C}\\x{16EA0}-\\x{16EB8}" \
    "\\x{16EBB}-\\x{16ED3}\\x{16FF2}-\\x{16FF3}\\x{187F8}-\\x{187FF}\\x{18CFF}\\x{18D09}-\\x{18D1E}" \
    "\\x{18D80}-\\x{18DF2}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}\\x{1E030}-\\x{1E06D}" \
    "\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}\\x{1E6C0}-\\x{1E6DE}\\x{1E6E0}-\\x{1E6E2}" \
    "\\x{1E6E4}-\\x{1E6E5}\\x{1E6E7}-\\x{1E6ED}\\x{1E6F0}-\\x{1E6F4}\\x{1E6FE}-\\x{1E6FF}" \
    "\\x{2B739}-\\x{2B73F}\\x{2CEA2}-\\x{2CEAD}\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{33479}"
#define LOOM_NEW_NUMBERS \
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}\\x{11DE0}-\\x{11DE9}" \
    "\\x{11F50}-\\x{11F59}\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}\\x{16FF4}-\\x{16FF6}" \
    "\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}\\x{1E4F0}-\\x{1E4F9}\\x{1E5F1}-\\x{1E5FA}"
#define LOOM_L "\\p{L}" LOOM_NEW_LETTERS
#define LOOM_N "\\p{N}" LOOM_NEW_NUMBERS
const char kGpt2Pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?[" LOOM_L "]+| ?[" LOOM_N "]+| ?[^" LOOM_JS_SPACE LOOM_L LOOM_N "]+"
    "|[" LOOM_JS_SPACE "]+(?![^" LOOM_JS_SPACE "])|[" LOOM_JS_SPACE "]+";
#undef LOOM_JS_SPACE
#undef LOOM_NEW_LETTERS
#undef LOOM_NEW_NUMBERS
#undef LOOM_L
#undef LOOM_N

struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) throw std::bad_alloc();
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

struct Gpt2BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  Regex() {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                         &err, &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw std::runtime_error("GPT-2 pattern does not compile at " + std::to_string(offset) + ": " +
                               reinterpret_cast<const char*>(msg));
    }
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // End of the piece that starts at `pos` of valid UTF-8 `s`.
  size_t next(std::string_view s, size_t pos, MatchState& st) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    int rc = jit ? pcre2_jit_match(code, subject, s.size(), pos, 0, st.data, st.context)
                 : pcre2_match(code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // pathological input: the interpreter has no such limit
      rc = pcre2_match(code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, st.data, nullptr);
    if (rc < 0) throw std::runtime_error("GPT-2 pre-tokenisation failed (PCRE2 error " + std::to_string(rc) + ")");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    // Every code point is covered by one of the alternatives, so pieces tile the text.
    if (ov[0] != pos || ov[1] <= pos) throw std::runtime_error("GPT-2 pre-tokenisation left a gap");
    return ov[1];
  }
};

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
    vocab = nlohmann::json::parse(read_file(vocab_file, "vocab file"));
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
      fail("vocab file '" + vocab_file + "': the id of " + symbol_for_message(it.key()) + " is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || uint64_t(id) >= n || seen[size_t(id)])
      fail("vocab file '" + vocab_file + "': ids must be 0.." + std::to_string(n - 1) + ", each once (" +
           symbol_for_message(it.key()) + " has " + std::to_string(id) + ")");
    if (!symbol_to_bytes(it.key(), bytes) || bytes.empty())
      fail("vocab file '" + vocab_file + "': " + symbol_for_message(it.key()) +
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
  const std::string text = read_file(merge_file, "merge file");
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    size_t nl = text.find('\n', start);
    lines.emplace_back(std::string_view(text).substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (lines.size() < 2) fail("merge file '" + merge_file + "': no merges (expected GPT-2's merges.txt)");
  t->merges_ = std::make_unique<MergeTable>();
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
    if (!symbol_to_bytes(parts[0], left) || !symbol_to_bytes(parts[1], right))
      fail(where + "not a byte-level BPE merge (is this GPT-2's merges.txt?)");
    auto a = t->bytes_id_.find(left), b = t->bytes_id_.find(right), c = t->bytes_id_.find(left + right);
    if (a == t->bytes_id_.end() || b == t->bytes_id_.end() || c == t->bytes_id_.end())
      fail(where + "merge " + symbol_for_message(std::string(parts[0]) + " " + std::string(parts[1])) +
           " uses or makes a token that is not in '" + vocab_file + "' (vocab and merges do not match)");
    t->merges_->put(a->second, b->second, int32_t(li), c->second);
  }
  t->regex_ = std::make_unique<Regex>();
  t->instance_ = g_next_instance.fetch_add(1);
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

// The reference loop: find the lowest-ranked adjacent pair, merge all its occurrences left to right.
void Gpt2BpeTokenizer::bpe_scan(std::string_view piece, std::vector<int32_t>& out) const {
  thread_local std::vector<int32_t> word;
  word.resize(piece.size());
  for (size_t i = 0; i < piece.size(); i++) word[i] = byte_id_[static_cast<unsigned char>(piece[i])];
  size_t n = word.size();
  while (n >= 2) {
    int32_t best_rank = std::numeric_limits<int32_t>::max(), a = 0, b = 0, merged = 0;
    for (size_t i = 0; i + 1 < n; i++) {
      const MergeTable::Slot* s = merges_->get(word[i], word[i + 1]);
      if (s && s->rank < best_rank) {
        best_rank = s->rank;
        a = word[i];
        b = word[i + 1];
        merged = s->merged;
      }
    }
    if (best_rank == std::numeric_limits<int32_t>::max()) break;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
      if (i + 1 < n && word[i] == a && word[i + 1] == b) {
        word[w++] = merged;
        i += 2;
      } else {
        word[w++] = word[i++];
      }
    }
    n = w;
  }
  out.insert(out.end(), word.begin(), word.begin() + long(n));
}

// Same result in O(n log n) for long pieces: a heap of candidate pairs ordered by rank; all entries of
// the lowest rank (= all occurrences of that pair) are merged as one pass, left to right.
void Gpt2BpeTokenizer::bpe_heap(std::string_view piece, std::vector<int32_t>& out) const {
  const size_t n = piece.size();
  std::vector<int32_t> id(n);
  std::vector<int64_t> prev(n), next(n);
  for (size_t i = 0; i < n; i++) {
    id[i] = byte_id_[static_cast<unsigned char>(piece[i])];
    prev[i] = int64_t(i) - 1;
    next[i] = i + 1 < n ? int64_t(i + 1) : -1;
  }
  struct Cand {
    int32_t rank;
    int64_t pos;  // left symbol's position
    int32_t left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int64_t p) {
    if (p < 0 || next[size_t(p)] < 0) return;
    const int32_t l = id[size_t(p)], r = id[size_t(next[size_t(p)])];
    if (const MergeTable::Slot* s = merges_->get(l, r)) heap.push(Cand{s->rank, p, l, r});
  };
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i + 1 < n; i++) push(int64_t(i));
  std::vector<Cand> pass;
  while (!heap.empty()) {
    const int32_t rank = heap.top().rank;
    pass.clear();
    while (!heap.empty() && heap.top().rank == rank) {
      pass.push_back(heap.top());
      heap.pop();
    }
    // pass is in position order (heap tie-break); merge each occurrence that is still intact.
    std::vector<int64_t> merged_at;
    for (const Cand& c : pass) {
      const size_t p = size_t(c.pos);
      if (!alive[p] || id[p] != c.left || next[p] < 0 || id[size_t(next[p])] != c.right) continue;
      const MergeTable::Slot* s = merges_->get(c.left, c.right);
      const size_t q = size_t(next[p]);
      id[p] = s->merged;
      alive[q] = false;
      next[p] = next[q];
      if (next[q] >= 0) prev[size_t(next[q])] = int64_t(p);
      merged_at.push_back(int64_t(p));
    }
    // New neighbours become candidates only after the pass (the reference rescans after it).
    for (int64_t p : merged_at) {
      if (!alive[size_t(p)]) continue;
      push(prev[size_t(p)]);
      push(p);
    }
  }
  for (int64_t p = 0; p >= 0; p = next[size_t(p)]) out.push_back(id[size_t(p)]);
}

// ---------------------------------------------------------------------------------------------
// Encode / decode

void Gpt2BpeTokenizer::split(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  MatchState& st = match_state();
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = regex_->next(text, pos, st);
    out.emplace_back(pos, end - pos);
    pos = end;
  }
}

void Gpt2BpeTokenizer::encode_valid(std::string_view text, std::vector<int32_t>& out) const {
  MatchState& st = match_state();
  WordCache& cache = thread_cache(instance_);
  thread_local std::vector<int32_t> scratch;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = regex_->next(text, pos, st);
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

// ---------------------------------------------------------------------------------------------
// Factory

std::vector<std::string> tokenizer_types() { return {"GPT2BPETokenizer"}; }

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config) {
  if (config.type == "GPT2BPETokenizer") return Gpt2BpeTokenizer::load(config.vocab_file, config.merge_file);
  fail("unsupported tokenizer type '" + config.type + "' (supported: GPT2BPETokenizer)");
}

}  // namespace loom::data
