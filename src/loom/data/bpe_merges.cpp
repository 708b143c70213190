#include "loom/data/bpe_merges.h"

#include <algorithm>
#include <functional>
#include <limits>

namespace loom::data {
namespace {

constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

// tiktoken's byte_pair_merge: an array of symbols with the rank of the pair each one starts; after a
// merge only the two ranks next to it change.
void merge_scan(const BpeMergeTable& merges, std::vector<int32_t>& word, std::vector<int32_t>& out) {
  thread_local std::vector<int32_t> rank, merged;
  size_t n = word.size();
  rank.resize(n);
  merged.resize(n);
  auto rank_at = [&](size_t i) {
    const BpeMergeTable::Slot* s = i + 1 < n ? merges.get(word[i], word[i + 1]) : nullptr;
    rank[i] = s ? s->rank : kNoRank;
    merged[i] = s ? s->merged : 0;
  };
  for (size_t i = 0; i < n; i++) rank_at(i);
  for (;;) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; i++)
      if (rank[i] < rank[best]) best = i;
    if (n < 2 || rank[best] == kNoRank) break;
    word[best] = merged[best];
    std::copy(word.begin() + long(best) + 2, word.begin() + long(n), word.begin() + long(best) + 1);
    std::copy(rank.begin() + long(best) + 2, rank.begin() + long(n), rank.begin() + long(best) + 1);
    std::copy(merged.begin() + long(best) + 2, merged.begin() + long(n), merged.begin() + long(best) + 1);
    n--;
    if (best > 0) rank_at(best - 1);
    rank_at(best);
  }
  out.insert(out.end(), word.begin(), word.begin() + long(n));
}

// Hugging Face tokenizers' Word::merge_all: a min-heap of (rank, left position) over a linked list of
// symbols. An entry is stale when its pair has changed since it was pushed; the pair now at that
// position is then looked up again and the entry skipped unless it has the same rank (in which case it
// is the same pair: symbols only grow to the right, so a different pair there is a longer one).
void merge_heap(const BpeMergeTable& merges, std::vector<int32_t>& id, std::vector<int32_t>& out) {
  const size_t n = id.size();
  thread_local std::vector<int32_t> next, prev;
  thread_local std::vector<uint64_t> heap;
  next.resize(n);
  prev.resize(n);
  heap.clear();
  auto entry = [](int32_t rank, size_t pos) { return (uint64_t(uint32_t(rank)) << 32) | uint64_t(pos); };
  for (size_t i = 0; i < n; i++) {
    prev[i] = int32_t(i) - 1;
    next[i] = i + 1 < n ? int32_t(i + 1) : -1;
    if (i + 1 < n)
      if (const BpeMergeTable::Slot* s = merges.get(id[i], id[i + 1])) heap.push_back(entry(s->rank, i));
  }
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  auto push = [&](int32_t rank, size_t pos) {
    heap.push_back(entry(rank, pos));
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const uint64_t top = heap.back();
    heap.pop_back();
    const auto rank = int32_t(top >> 32);
    const auto p = size_t(uint32_t(top));
    if (id[p] < 0 || next[p] < 0) continue;
    const auto q = size_t(next[p]);
    const BpeMergeTable::Slot* s = merges.get(id[p], id[q]);
    if (!s || s->rank != rank) continue;
    id[p] = s->merged;
    id[q] = -1;
    next[p] = next[q];
    if (next[q] >= 0) prev[size_t(next[q])] = int32_t(p);
    if (prev[p] >= 0)
      if (const BpeMergeTable::Slot* l = merges.get(id[size_t(prev[p])], id[p])) push(l->rank, size_t(prev[p]));
    if (next[p] >= 0)
      if (const BpeMergeTable::Slot* r = merges.get(id[p], id[size_t(next[p])])) push(r->rank, p);
  }
  for (int32_t p = 0; p >= 0; p = next[size_t(p)]) out.push_back(id[size_t(p)]);
}

}  // namespace

void bpe_merge_lowest_first(const BpeMergeTable& merges, std::vector<int32_t>& symbols, std::vector<int32_t>& out) {
  if (symbols.empty()) return;
  if (symbols.size() <= 48)
    merge_scan(merges, symbols, out);
  else
    merge_heap(merges, symbols, out);
}

}  // namespace loom::data
