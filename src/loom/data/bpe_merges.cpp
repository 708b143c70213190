#include "loom/data/bpe_merges.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <unordered_map>

#include "loom/core/error.h"

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

// The candidates of merge_heap: (rank, left position), smallest first, in one binary heap.
class OneHeap {
 public:
  OneHeap(const BpeMergeTable&, size_t n) {
    heap_.clear();
    heap_.reserve(n);
  }
  ~OneHeap() {
    if (heap_.capacity() > (size_t(1) << 16)) heap_ = {};  // a huge word's buffer is not kept
  }
  void push(int32_t rank, int32_t pos) {
    heap_.push_back((uint64_t(uint32_t(rank)) << 32) | uint32_t(pos));
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  }
  bool pop(int32_t& rank, int32_t& pos) {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    rank = int32_t(heap_.back() >> 32);
    pos = int32_t(uint32_t(heap_.back()));
    heap_.pop_back();
    return true;
  }

 private:
  static thread_local std::vector<uint64_t> heap_;
};
thread_local std::vector<uint64_t> OneHeap::heap_;

// The same order from a min-heap of positions per rank and a two-level bitmap of the non-empty ranks.
class HeapPerRank {
 public:
  HeapPerRank(const BpeMergeTable& merges, size_t) : bucket_(size_t(merges.rank_limit)) {
    words_.assign((bucket_.size() + 63) / 64, 0);
    tops_.assign((words_.size() + 63) / 64, 0);
  }
  void push(int32_t rank, int32_t pos) {
    std::vector<int32_t>& b = bucket_[size_t(rank)];
    b.push_back(pos);
    std::push_heap(b.begin(), b.end(), std::greater<>());
    const auto r = size_t(rank);
    words_[r >> 6] |= uint64_t(1) << (r & 63);
    tops_[r >> 12] |= uint64_t(1) << ((r >> 6) & 63);
    if (r >> 12 < first_top_) first_top_ = r >> 12;
  }
  bool pop(int32_t& rank, int32_t& pos) {
    while (first_top_ < tops_.size() && tops_[first_top_] == 0) first_top_++;
    if (first_top_ == tops_.size()) return false;
    const size_t w = (first_top_ << 6) + size_t(__builtin_ctzll(tops_[first_top_]));
    const size_t r = (w << 6) + size_t(__builtin_ctzll(words_[w]));
    std::vector<int32_t>& b = bucket_[r];
    std::pop_heap(b.begin(), b.end(), std::greater<>());
    rank = int32_t(r);
    pos = b.back();
    b.pop_back();
    if (b.empty()) {
      if (b.capacity() > 1024) b = {};  // a rank done with gives its memory back
      words_[w] &= ~(uint64_t(1) << (r & 63));
      if (words_[w] == 0) tops_[w >> 6] &= ~(uint64_t(1) << (w & 63));
    }
    return true;
  }

 private:
  std::vector<std::vector<int32_t>> bucket_;  // rank -> heap of left positions
  std::vector<uint64_t> words_, tops_;        // bit r: bucket r is non-empty; bit w: words_[w] != 0
  size_t first_top_ = 0;                       // tops_ below it are 0
};

// Hugging Face tokenizers' Word::merge_all: a min-queue of (rank, left position) over a linked list of
// symbols. An entry is stale when its pair has changed since it was pushed; the pair now at that
// position is then looked up again and the entry skipped unless it has the same rank (in which case it
// is the same pair: symbols only grow to the right, so a different pair there is a longer one).
template <class Queue>
void merge_heap(const BpeMergeTable& merges, std::vector<int32_t>& id, std::vector<int32_t>& out) {
  if (id.size() > size_t(std::numeric_limits<int32_t>::max()))
    fail("a pre-token of " + std::to_string(id.size()) + " bytes is too long to tokenize (limit 2 GiB)");
  const size_t n = id.size();
  thread_local std::vector<int32_t> next, prev;
  next.resize(n);
  prev.resize(n);
  Queue queue(merges, n);
  for (size_t i = 0; i < n; i++) {
    prev[i] = int32_t(i) - 1;
    next[i] = i + 1 < n ? int32_t(i + 1) : -1;
    if (i + 1 < n)
      if (const BpeMergeTable::Slot* s = merges.get(id[i], id[i + 1])) queue.push(s->rank, int32_t(i));
  }
  int32_t rank = 0, pos = 0;
  while (queue.pop(rank, pos)) {
    const auto p = size_t(pos);
    if (id[p] < 0 || next[p] < 0) continue;
    const auto q = size_t(next[p]);
    const BpeMergeTable::Slot* s = merges.get(id[p], id[q]);
    if (!s || s->rank != rank) continue;
    id[p] = s->merged;
    id[q] = -1;
    next[p] = next[q];
    if (next[q] >= 0) prev[size_t(next[q])] = int32_t(p);
    if (prev[p] >= 0)
      if (const BpeMergeTable::Slot* l = merges.get(id[size_t(prev[p])], id[p])) queue.push(l->rank, prev[p]);
    if (next[p] >= 0)
      if (const BpeMergeTable::Slot* r = merges.get(id[p], id[size_t(next[p])])) queue.push(r->rank, int32_t(p));
  }
  for (int32_t p = 0; p >= 0; p = next[size_t(p)]) out.push_back(id[size_t(p)]);
  if (n > (size_t(1) << 16)) {  // a huge word's 8 bytes per byte are not kept for the thread's lifetime
    next = {};
    prev = {};
  }
}

// The reference loop: find the lowest-ranked adjacent pair, merge all its occurrences left to right.
void merge_all_scan(const BpeMergeTable& merges, std::vector<int32_t>& word, std::vector<int32_t>& out) {
  size_t n = word.size();
  while (n >= 2) {
    int32_t best_rank = std::numeric_limits<int32_t>::max(), a = 0, b = 0, merged = 0;
    for (size_t i = 0; i + 1 < n; i++) {
      const BpeMergeTable::Slot* s = merges.get(word[i], word[i + 1]);
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

// Same result in O(n log n) time and about 16 bytes per input byte for long pieces (a 50 MB word of
// letters is one pre-token). The symbols are a linked list over byte positions; every adjacent pair that
// has a merge waits, as the position of its left symbol, in the bucket of its rank, and a min-heap holds
// the ranks whose bucket is non-empty. One pass takes the lowest rank's bucket, sorts it into position
// order and merges each occurrence still intact, left to right: the reference's "merge every occurrence
// of the best pair" pass (an occurrence overlapping one just merged, as in "aaa", is not intact). The new
// neighbour pairs join their buckets after the pass, as the reference rescans after it. Stale entries
// (a pair that changed since it was queued) fail the intact check and cost nothing else.
void merge_all_heap(const BpeMergeTable& merges, std::vector<int32_t>& id, std::vector<int32_t>& out) {
  if (id.size() > size_t(std::numeric_limits<int32_t>::max()))
    fail("a pre-token of " + std::to_string(id.size()) + " bytes is too long to tokenize (limit 2 GiB)");
  const auto n = int32_t(id.size());
  std::vector<int32_t> prev(id.size()), next(id.size());  // id (the word, in place) -1: merged into its left
  for (int32_t i = 0; i < n; i++) {
    prev[size_t(i)] = i - 1;
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
  }
  // rank -> left positions: a map for most words, indexed by rank for a huge one (no hashing per pair;
  // the table of rank_limit empty vectors is small beside such a word)
  std::unordered_map<int32_t, std::vector<int32_t>> bucket_map;
  std::vector<std::vector<int32_t>> bucket_vec;
  const bool by_index = id.size() > (size_t(1) << 16);
  if (by_index) bucket_vec.resize(size_t(merges.rank_limit));
  auto bucket = [&](int32_t rank) -> std::vector<int32_t>& {
    return by_index ? bucket_vec[size_t(rank)] : bucket_map[rank];
  };
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<int32_t>> ranks;
  auto queue_pair = [&](int32_t p) {
    if (p < 0 || next[size_t(p)] < 0) return;
    const BpeMergeTable::Slot* s = merges.get(id[size_t(p)], id[size_t(next[size_t(p)])]);
    if (!s) return;
    std::vector<int32_t>& b = bucket(s->rank);
    if (b.empty()) ranks.push(s->rank);
    b.push_back(p);
  };
  for (int32_t i = 0; i + 1 < n; i++) queue_pair(i);
  std::vector<int32_t> pass, merged_at;
  while (!ranks.empty()) {
    const int32_t rank = ranks.top();
    ranks.pop();
    std::vector<int32_t>& b = bucket(rank);
    pass.swap(b);
    if (by_index)
      std::vector<int32_t>().swap(b);  // what the map's erase frees
    else
      bucket_map.erase(rank);
    std::sort(pass.begin(), pass.end());
    pass.erase(std::unique(pass.begin(), pass.end()), pass.end());
    merged_at.clear();
    for (const int32_t p : pass) {
      const int32_t q = next[size_t(p)];
      if (id[size_t(p)] < 0 || q < 0) continue;
      const BpeMergeTable::Slot* s = merges.get(id[size_t(p)], id[size_t(q)]);
      if (!s || s->rank != rank) continue;  // no longer this pair
      id[size_t(p)] = s->merged;
      id[size_t(q)] = -1;
      next[size_t(p)] = next[size_t(q)];
      if (next[size_t(q)] >= 0) prev[size_t(next[size_t(q)])] = p;
      merged_at.push_back(p);
    }
    for (const int32_t p : merged_at) {
      queue_pair(prev[size_t(p)]);
      queue_pair(p);
    }
    pass.clear();
    if (pass.capacity() > (size_t(1) << 16)) pass.shrink_to_fit();  // the first passes of a huge word
  }
  for (int32_t p = 0; p >= 0; p = next[size_t(p)]) out.push_back(id[size_t(p)]);
}

}  // namespace

void bpe_merge_lowest_first(const BpeMergeTable& merges, std::vector<int32_t>& symbols, std::vector<int32_t>& out,
                            int algorithm) {
  if (symbols.empty()) return;
  if (algorithm == 0) algorithm = symbols.size() <= 48 ? 1 : symbols.size() <= (size_t(1) << 16) ? 2 : 3;
  if (algorithm == 1)
    merge_scan(merges, symbols, out);
  else if (algorithm == 2)
    merge_heap<OneHeap>(merges, symbols, out);
  else
    merge_heap<HeapPerRank>(merges, symbols, out);
}

bool merges_make_only_higher_pairs(const BpeMergeTable& merges, size_t vocab_size) {
  std::vector<int32_t> made_by(vocab_size, -1);  // token -> the highest rank of a merge making it
  for (const BpeMergeTable::Slot& s : merges.slots) {
    if (s.key == ~0ull) continue;
    if (s.merged < 0 || size_t(s.merged) >= vocab_size) return false;
    made_by[size_t(s.merged)] = std::max(made_by[size_t(s.merged)], s.rank);
  }
  for (const BpeMergeTable::Slot& s : merges.slots) {
    if (s.key == ~0ull) continue;
    const auto a = int32_t(s.key >> 32), b = int32_t(uint32_t(s.key));
    if (a < 0 || b < 0 || size_t(a) >= vocab_size || size_t(b) >= vocab_size) return false;
    if (made_by[size_t(a)] >= s.rank || made_by[size_t(b)] >= s.rank) return false;
  }
  return true;
}

void bpe_merge_all_occurrences(const BpeMergeTable& merges, std::vector<int32_t>& symbols, std::vector<int32_t>& out,
                               int algorithm) {
  if (symbols.empty()) return;
  if (algorithm == 0) algorithm = symbols.size() <= 64 ? 1 : 2;
  if (algorithm == 1)
    merge_all_scan(merges, symbols, out);
  else
    merge_all_heap(merges, symbols, out);
}

}  // namespace loom::data
