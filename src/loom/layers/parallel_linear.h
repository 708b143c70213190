#pragma once
// Megatron's tensor-parallel linears, each owning its collectives (tensor_parallel/layers.py):
//  - ColumnParallelLinear: W [out, in] split by output rows, this rank holds out/T of them. Its input is
//    every token row: with sequence parallelism gather_input() all-gathers the rows first. The input
//    gradient is partial per rank: reduce_input_grad() sums it over the group (reduce-scatters it back to
//    this rank's rows with sequence parallelism).
//  - RowParallelLinear: W [out, in] split by input columns; its output is a partial sum per rank:
//    reduce_output() all-reduces it (reduce-scatters it to this rank's rows under sequence parallelism),
//    gather_output_grad() brings back every row of the output gradient.
// With one rank every collective is a no-op. A column-parallel linear may consist of several parts
// (a gated MLP's gate and up projections), each its own parameter split the same way, filling adjacent
// column blocks of one output so one activation kernel reads both.
#include <string>
#include <vector>

#include "loom/layers/linear.h"
#include "loom/layers/param_store.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

class ColumnParallelLinear {
 public:
  ColumnParallelLinear() = default;
  // names: one per part ("<prefix>.weight"); each part has out_per_part rows in the full model.
  ColumnParallelLinear(ParamStore& store, const std::vector<std::string>& prefixes, int64_t in, int64_t out_per_part,
                       bool bias, const TensorParallel& tp);
  int64_t local_out() const { return int64_t(parts_.size()) * local_part_; }
  int weight(int part = 0) const { return parts_[size_t(part)].weight; }
  int bias(int part = 0) const { return parts_[size_t(part)].bias; }
  // bf16 GEMMs from here on (null: fp32); the weights are then read only as bf16.
  void set_bf16(const Bf16Operands* b);

  // Sequence parallel: every rank's rows of x into full (else nothing: full is x).
  void gather_input(const float* local, float* full, int local_rows, int64_t in) const;
  // y [N, local_out] = x_full W^T (+ bias when add_bias).
  void forward(const float* x_full, float* y, int N, bool add_bias = true) const;
  // dW += dy^T x; db += colsum(dy) when accumulate_bias; dx_partial [N, in] = dy W (this rank's part).
  void backward(const float* dy, const float* x_full, float* dx_partial, int N, bool accumulate_bias = true) const;
  // Its halves (backward runs both): dx_partial only; dW (and db) only.
  void backward_input(const float* dy, float* dx_partial, int N) const;
  void backward_weight(const float* dy, const float* x_full, int N, bool accumulate_bias = true) const;
  // Sums the partial input gradient over the group: in place (all-reduce), or this rank's rows into
  // `local` (sequence parallel). Returns where the result is.
  const float* reduce_input_grad(float* partial, float* local, int N, int64_t in) const;
  LinearParams params(int part) const;

 private:
  struct Part {
    int weight = -1, bias = -1;
  };
  ParamStore* store_ = nullptr;
  TensorParallel tp_;
  std::vector<Part> parts_;
  int64_t local_part_ = 0;
  const Bf16Operands* bf16_ = nullptr;
};

class RowParallelLinear {
 public:
  RowParallelLinear() = default;
  // The bias (replicated) is added by the caller after the reduction (Megatron's bias-dropout-add).
  RowParallelLinear(ParamStore& store, const std::string& prefix, int64_t in, int64_t out, bool bias,
                    const TensorParallel& tp);
  int weight() const { return weight_; }
  int bias() const { return bias_; }
  void set_bf16(const Bf16Operands* b);  // as ColumnParallelLinear's

  // partial [N, out] = x W_local^T (no bias).
  void forward(const float* x, float* partial, int N) const;
  // Partial sums -> this rank's rows of the total (in place, or into local under sequence parallelism).
  const float* reduce_output(float* partial, float* local, int N) const;
  // Sequence parallel: every row of the output gradient (into full); else dout itself.
  const float* gather_output_grad(const float* local, float* full, int N) const;
  // dW += dy^T x; dx [N, in_local] = dy W.
  void backward(const float* dy, const float* x, float* dx, int N) const;
  // Its halves (backward runs both): dx only; dW only.
  void backward_input(const float* dy, float* dx, int N) const;
  void backward_weight(const float* dy, const float* x, int N) const;
  LinearParams params() const;

 private:
  ParamStore* store_ = nullptr;
  TensorParallel tp_;
  int weight_ = -1, bias_ = -1;
  int64_t out_ = 0;
  const Bf16Operands* bf16_ = nullptr;
};

}  // namespace loom
