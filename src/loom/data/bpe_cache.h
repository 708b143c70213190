#pragma once
// Per-thread cache of BPE results keyed by the pre-token's bytes. Natural text repeats a small set of
// words, so after warm-up nearly every pre-token is a hash lookup instead of a BPE run. One cache per
// (thread, tokenizer instance): encode() stays const and lock-free from many threads.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace loom::data {

// A fast 64-bit hash of a short byte string (never 0: 0 marks an empty cache slot).
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

class WordCache {
 public:
  WordCache() { reset(1u << 12); }

  // The cached ids of `key` (hash `h` from hash_bytes) and their count, or nullptr.
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

  // Keys longer than kMaxKey are not kept (they rarely repeat); a full cache starts over.
  void insert(std::string_view key, uint64_t h, const int32_t* ids, size_t n);

 private:
  static constexpr size_t kMaxSlots = size_t(1) << 20;
  static constexpr size_t kMaxKey = 4096;
  static constexpr size_t kMaxKeyBytes = size_t(64) << 20;
  struct Slot {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, n_ids;
  };
  void reset(size_t slots);
  void place(const Slot& s);
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
  std::string keys_;
  std::vector<int32_t> ids_;
};

// A process-unique number for a tokenizer instance, to key thread_cache().
uint64_t next_tokenizer_instance();
// This thread's cache for tokenizer `instance` (a few per thread; the oldest is dropped).
WordCache& thread_cache(uint64_t instance);

}  // namespace loom::data
