#pragma once
// y = x W^T + b with W [out, in] (torch/Megatron layout), as plain functions over a ParamStore's views.
#include <cstdint>

#include "loom/core/tensor.h"

namespace loom {

// bf16 GEMMs (--bf16, as Megatron's): operands rounded to bf16 into these buffers, fp32 accumulation.
struct Bf16Operands {
  uint16_t* in = nullptr;   // [N, in]
  uint16_t* out = nullptr;  // [N, out]: the output gradient
  uint16_t* w = nullptr;    // [out, in]
};

struct LinearParams {
  Tensor weight, bias;  // bias may be undefined
  Tensor dweight, dbias;
  const Bf16Operands* bf16 = nullptr;  // null: fp32 GEMMs
};

// y [N, out] = x [N, in] W^T (+ b when add_bias; callers fusing the bias elsewhere pass false).
void linear_forward(const LinearParams& p, const float* x, float* y, int N, bool add_bias = true);
// dW += dy^T x; db += colsum(dy) when accumulate_bias; dx = dy W (overwritten) when dx is non-null.
void linear_backward(const LinearParams& p, const float* dy, const float* x, float* dx, int N,
                     bool accumulate_bias = true);

}  // namespace loom
