#pragma once
// Megatron's tensor-parallel communication, as the layers use it. A layer holds a TensorParallel and
// calls these at the points Megatron's mappings do (copy_to / reduce_from / scatter_to /
// gather_from / reduce_scatter_to regions). With one rank every call is a no-op, so the
// single-process model is the same code.
//
// Sequence parallelism shards the token rows of the residual stream: our activations are
// [batch x seq, hidden] (Megatron's are [seq, batch, hidden]), so rank r holds the contiguous token rows
// [r N/T, (r+1) N/T). LayerNorm, dropout and residual adds are per token, so any partition of the tokens
// is equally valid; the all-gather before the column-parallel GEMMs restores every row in order.
#include <cstdint>
#include <memory>

namespace loom::dist {
class Communicator;
}

namespace loom {

struct TensorParallel {
  std::shared_ptr<dist::Communicator> comm;  // null: one rank
  int rank = 0, size = 1;
  bool sequence_parallel = false;

  bool active() const { return size > 1; }
  // Rows of the residual stream this rank holds, out of `rows` tokens.
  int local_rows(int rows) const { return sequence_parallel ? rows / size : rows; }
  int first_row(int rows) const { return sequence_parallel ? rank * (rows / size) : 0; }

  // In place sum over the group (reduce_from_tensor_model_parallel_region / backward of copy_to).
  void all_reduce(float* data, long n) const;
  // Every rank's `local_rows` x `cols` rows into `full` (rank order). full may be `local` + offset.
  void all_gather_rows(const float* local, float* full, long local_rows, long cols) const;
  // Sum of every rank's `full` rows, this rank's share into `local`.
  void reduce_scatter_rows(const float* full, float* local, long local_rows, long cols) const;
};

}  // namespace loom
