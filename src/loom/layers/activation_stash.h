#pragma once
// What a layer saves for its backward, held compactly per micro-batch slot. With half-precision
// activations (--fp16/--bf16) a layer computes in one fp32 working set shared by all layers and keeps each
// saved tensor here as bf16/fp16 (normalisation statistics and the attention log-sum-exp stay fp32, as
// Megatron keeps them), widening them back into the working set just before its backward. Values are
// rounded where they are produced (put), so the forward consumes exactly what the backward reads back
// and a recomputed forward reproduces them bit for bit.
#include <cstdint>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

class ActivationStash {
 public:
  // Declares an entry of up to `n` elements stored as `type`; returns its id. Declare all, then allocate.
  int add(int64_t n, DType type);
  void allocate(int slots);
  // Keeps x[0, n) (n <= the declared size) as entry `id` of `slot`; a half-precision entry first rounds
  // x in place to what it keeps.
  void put(int slot, int id, float* x, int64_t n);
  // Widens entry `id` of `slot` back into x[0, n).
  void get(int slot, int id, float* x, int64_t n) const;
  size_t bytes_per_slot() const { return size_t(bytes_); }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    int64_t offset, n;  // bytes into a slot's buffer; declared elements
    DType type;
  };
  void* data(int slot, const Entry& e, int64_t n) const;
  std::vector<Entry> entries_;
  int64_t bytes_ = 0;
  std::vector<Tensor> slots_;
};

}  // namespace loom
