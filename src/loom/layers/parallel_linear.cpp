#include "loom/layers/parallel_linear.h"

namespace loom {

ColumnParallelLinear::ColumnParallelLinear(ParamStore& store, const std::vector<std::string>& prefixes, int64_t in,
                                           int64_t out_per_part, bool bias, const TensorParallel& tp)
    : store_(&store), tp_(tp), local_part_(out_per_part / tp.size) {
  for (const std::string& p : prefixes) {
    Part part;
    const ParamSplit rows{{out_per_part, in}, 0, tp_.rank * local_part_, false, {}};
    part.weight = store.add(p + ".weight", {local_part_, in}, true, rows);
    if (bias) part.bias = store.add(p + ".bias", {local_part_}, false, ParamSplit{{out_per_part}, 0, tp_.rank * local_part_, false, {}});
    parts_.push_back(part);
  }
}

void ColumnParallelLinear::set_bf16(const Bf16Operands* b) {
  bf16_ = b;
  if (b)
    for (const Part& p : parts_) store_->read_as_bf16_only(p.weight);
}

LinearParams ColumnParallelLinear::params(int part) const {
  const Part& p = parts_[size_t(part)];
  const Param& w = store_->at(p.weight);
  LinearParams lp{w.value, {}, w.grad, {}, bf16_, w.stored_bf16};
  if (p.bias >= 0) lp.bias = store_->at(p.bias).value, lp.dbias = store_->at(p.bias).grad;
  return lp;
}

void ColumnParallelLinear::gather_input(const float* local, float* full, int local_rows, int64_t in) const {
  if (tp_.sequence_parallel && tp_.active()) tp_.all_gather_rows(local, full, local_rows, long(in));
}

void ColumnParallelLinear::forward(const float* x_full, float* y, int N, bool add_bias) const {
  if (parts_.size() == 1) {
    linear_forward(params(0), x_full, y, N, add_bias);
    return;
  }
  for (size_t p = 0; p < parts_.size(); p++)
    linear_forward(params(int(p)), x_full, y + p * size_t(local_part_), N, add_bias, int(local_out()));
}

void ColumnParallelLinear::backward(const float* dy, const float* x_full, float* dx_partial, int N,
                                    bool accumulate_bias) const {
  if (parts_.size() == 1) {
    linear_backward(params(0), dy, x_full, dx_partial, N, accumulate_bias);
    return;
  }
  for (size_t p = 0; p < parts_.size(); p++)
    linear_backward(params(int(p)), dy + p * size_t(local_part_), x_full, dx_partial, N, accumulate_bias,
                    int(local_out()), /*accumulate_dx=*/p > 0);
}

void ColumnParallelLinear::backward_input(const float* dy, float* dx_partial, int N) const {
  if (parts_.size() == 1) {
    linear_backward_input(params(0), dy, dx_partial, N);
    return;
  }
  for (size_t p = 0; p < parts_.size(); p++)
    linear_backward_input(params(int(p)), dy + p * size_t(local_part_), dx_partial, N, int(local_out()),
                          /*accumulate_dx=*/p > 0);
}

void ColumnParallelLinear::backward_weight(const float* dy, const float* x_full, int N, bool accumulate_bias) const {
  if (parts_.size() == 1) {
    linear_backward_weight(params(0), dy, x_full, N, accumulate_bias);
    return;
  }
  for (size_t p = 0; p < parts_.size(); p++)
    linear_backward_weight(params(int(p)), dy + p * size_t(local_part_), x_full, N, accumulate_bias, int(local_out()));
}

const float* ColumnParallelLinear::reduce_input_grad(float* partial, float* local, int N, int64_t in) const {
  if (!tp_.active()) return partial;
  if (tp_.sequence_parallel) {
    tp_.reduce_scatter_rows(partial, local, tp_.local_rows(N), long(in));
    return local;
  }
  tp_.all_reduce(partial, long(N) * long(in));
  return partial;
}

RowParallelLinear::RowParallelLinear(ParamStore& store, const std::string& prefix, int64_t in, int64_t out, bool bias,
                                     const TensorParallel& tp)
    : store_(&store), tp_(tp), out_(out) {
  const int64_t local_in = in / tp.size;
  weight_ = store.add(prefix + ".weight", {out, local_in}, true, ParamSplit{{out, in}, 1, tp_.rank * local_in, false, {}});
  // Replicated; its gradient is partial per rank under sequence parallelism (each rank's tokens).
  if (bias) bias_ = store.add(prefix + ".bias", {out}, false, ParamSplit{{}, -1, 0, tp_.sequence_parallel && tp_.active(), {}});
}

void RowParallelLinear::set_bf16(const Bf16Operands* b) {
  bf16_ = b;
  if (b) store_->read_as_bf16_only(weight_);
}

LinearParams RowParallelLinear::params() const {
  const Param& w = store_->at(weight_);
  LinearParams lp{w.value, {}, w.grad, {}, bf16_, w.stored_bf16};
  if (bias_ >= 0) lp.bias = store_->at(bias_).value, lp.dbias = store_->at(bias_).grad;
  return lp;
}

void RowParallelLinear::forward(const float* x, float* partial, int N) const {
  linear_forward(params(), x, partial, N, /*add_bias=*/false);
}

const float* RowParallelLinear::reduce_output(float* partial, float* local, int N) const {
  if (!tp_.active()) return partial;
  if (tp_.sequence_parallel) {
    tp_.reduce_scatter_rows(partial, local, tp_.local_rows(N), long(out_));
    return local;
  }
  tp_.all_reduce(partial, long(N) * long(out_));
  return partial;
}

const float* RowParallelLinear::gather_output_grad(const float* local, float* full, int N) const {
  if (!(tp_.sequence_parallel && tp_.active())) return local;
  tp_.all_gather_rows(local, full, tp_.local_rows(N), long(out_));
  return full;
}

void RowParallelLinear::backward(const float* dy, const float* x, float* dx, int N) const {
  linear_backward(params(), dy, x, dx, N, /*accumulate_bias=*/false);
}

void RowParallelLinear::backward_input(const float* dy, float* dx, int N) const {
  linear_backward_input(params(), dy, dx, N);
}

void RowParallelLinear::backward_weight(const float* dy, const float* x, int N) const {
  linear_backward_weight(params(), dy, x, N, /*accumulate_bias=*/false);
}

}  // namespace loom
