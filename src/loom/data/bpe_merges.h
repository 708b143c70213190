#pragma once
// The merge table of a byte-level BPE, (left id, right id) -> (rank, merged id), and the merge loop
// that Hugging Face tokenizers and tiktoken share: repeatedly merge the adjacent pair of lowest rank,
// the leftmost one on ties, one pair at a time. (GPT-2's encoder.py merges every occurrence of the
// best pair in one pass instead; gpt2_tokenizer.cpp keeps that loop.)
#include <cstddef>
#include <cstdint>
#include <vector>

namespace loom::data {

struct BpeMergeTable {
  struct Slot {
    uint64_t key = ~0ull;
    int32_t rank = 0, merged = 0;
  };
  std::vector<Slot> slots;
  uint64_t mask = 0;
  int32_t rank_limit = 0;  // the highest rank put + 1

  static uint64_t key_of(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  // Room for n merges (open addressing at most half full).
  void init(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    slots.assign(cap, Slot{});
    mask = cap - 1;
  }
  // Inserts or overwrites (a later duplicate wins, like Python's dict(zip(merges, range))).
  void put(int32_t a, int32_t b, int32_t rank, int32_t merged) {
    if (rank >= rank_limit) rank_limit = rank + 1;
    const uint64_t k = key_of(a, b);
    for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k || slots[i].key == ~0ull) {
        slots[i] = Slot{k, rank, merged};
        return;
      }
    }
  }
  // Brings the slot where put/get of (a, b) starts into the cache (loading many merges a block at a time).
  void prefetch(int32_t a, int32_t b) const { __builtin_prefetch(&slots[mix(key_of(a, b)) & mask]); }
  const Slot* get(int32_t a, int32_t b) const {
    const uint64_t k = key_of(a, b);
    for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots[i];
      if (s.key == k) return &s;
      if (s.key == ~0ull) return nullptr;
    }
  }
};

// BPE of one word given as its initial symbol ids (one per byte), lowest (rank, position) first, one
// merge at a time; the resulting ids are appended to `out`. Short words rescan an array (cheapest
// for the few bytes of a typical word); long ones use a heap of candidate pairs, O(n log n) time; huge
// ones (over 64k symbols) a heap of positions per rank under a bitmap of the ranks that have any, whose
// small heaps stay in cache and take 4 bytes per candidate instead of 8 (the same order, so the same ids).
// algorithm 0 = automatic, 1 = rescan, 2 = one heap, 3 = heaps per rank.
void bpe_merge_lowest_first(const BpeMergeTable& merges, std::vector<int32_t>& symbols, std::vector<int32_t>& out,
                            int algorithm = 0);

// True when every merge's two parts are made only by merges of lower rank (or are no merge's result): a
// merge then only ever creates pairs of higher rank than its own, which is how BPE training writes merges
// (GPT-2's, Llama 3's). For such a table bpe_merge_lowest_first and bpe_merge_all_occurrences give the
// same ids: the lowest-ranked pairs are merged left to right, overlapping ones skipped, before any pair of
// a higher rank, in both. `vocab_size` bounds the ids the table names.
bool merges_make_only_higher_pairs(const BpeMergeTable& merges, size_t vocab_size);

// BPE of one word as GPT-2's encoder.py and CLIP's simple_tokenizer.py do it: take the adjacent pair of
// lowest rank and merge EVERY occurrence of it in one pass, left to right without overlap, then look
// again. `symbols` are the word's initial ids (overwritten); the result is appended to `out`.
// algorithm 0 = automatic, 1 = rescan per pass (short words), 2 = rank buckets on a heap, O(n log n)
// for long words (the same ids).
void bpe_merge_all_occurrences(const BpeMergeTable& merges, std::vector<int32_t>& symbols, std::vector<int32_t>& out,
                               int algorithm = 0);

}  // namespace loom::data
