#include "loom/data/bpe_cache.h"

#include <atomic>
#include <memory>

namespace loom::data {

void WordCache::insert(std::string_view key, uint64_t h, const int32_t* ids, size_t n) {
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

void WordCache::reset(size_t slots) {
  slots_.assign(slots, Slot{0, 0, 0, 0, 0});
  mask_ = slots - 1;
  keys_.clear();
  ids_.clear();
  count_ = 0;
}

void WordCache::place(const Slot& s) {
  size_t i = s.hash & mask_;
  while (slots_[i].hash != 0) i = (i + 1) & mask_;
  slots_[i] = s;
}

void WordCache::grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{0, 0, 0, 0, 0});
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (const Slot& s : old)
    if (s.hash != 0) place(s);
}

namespace {
std::atomic<uint64_t> g_next_instance{1};
}  // namespace

uint64_t next_tokenizer_instance() { return g_next_instance.fetch_add(1); }

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

}  // namespace loom::data
