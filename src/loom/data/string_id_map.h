#pragma once
// A flat open-addressing map from short byte strings to ids, its keys packed into one buffer: loading a
// 128k-token vocabulary and checking 280k merges against it costs no allocation per key and one cache
// line per lookup, where std::unordered_map<std::string, int> pays a node and a string per key.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "loom/data/bpe_cache.h"

namespace loom::data {

class StringIdMap {
 public:
  StringIdMap() { rehash(16); }

  // Room for n keys without growing.
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }

  static uint64_t hash(std::string_view key) { return hash_bytes(key.data(), key.size()); }
  // Brings the slot where a lookup of hash `h` starts into the cache: a loop over many keys prefetches a
  // few keys ahead instead of waiting for one cache miss after the other.
  void prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }

  // The id of `key`, or -1.
  int32_t find(std::string_view key) const { return find(key, hash(key)); }
  // The same with the key's hash(), already computed.
  int32_t find(std::string_view key, uint64_t h) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return -1;
      if (s.hash == h && equal(s, key)) return s.id;
    }
  }

  // Adds `key` -> id; false (nothing changed) when `key` is already there.
  bool insert(std::string_view key, int32_t id) { return put(key, id, hash(key), false); }
  bool insert(std::string_view key, int32_t id, uint64_t h) { return put(key, id, h, false); }
  // Adds or overwrites.
  void assign(std::string_view key, int32_t id) { put(key, id, hash(key), true); }

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }

 private:
  struct Slot {
    uint64_t hash;  // 0: empty
    uint32_t off, len;
    int32_t id;
  };
  bool equal(const Slot& s, std::string_view key) const {
    return s.len == key.size() && std::memcmp(keys_.data() + s.off, key.data(), key.size()) == 0;
  }
  bool put(std::string_view key, int32_t id, uint64_t h, bool overwrite) {
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
    size_t i = h & mask_;
    for (; slots_[i].hash != 0; i = (i + 1) & mask_) {
      if (slots_[i].hash == h && equal(slots_[i], key)) {
        if (overwrite) slots_[i].id = id;
        return false;
      }
    }
    slots_[i] = Slot{h, uint32_t(keys_.size()), uint32_t(key.size()), id};
    keys_.append(key);
    count_++;
    return true;
  }
  void rehash(size_t cap) {
    std::vector<Slot> old(cap, Slot{0, 0, 0, 0});
    old.swap(slots_);
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (s.hash == 0) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].hash != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
  std::string keys_;
};

}  // namespace loom::data
