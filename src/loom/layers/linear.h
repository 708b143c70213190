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
  const uint16_t* weight_bf16 = nullptr;  // the weight already in bf16 (Param::stored_bf16), else rounded into bf16->w
};

// y [N, out] = x [N, in] W^T (+ b when add_bias; callers fusing the bias elsewhere pass false). ldy: the
// row stride of y (0: out), so two linears can fill the halves of one activation (a gated MLP's fc1).
void linear_forward(const LinearParams& p, const float* x, float* y, int N, bool add_bias = true, int ldy = 0);
// dW += dy^T x; db += colsum(dy) when accumulate_bias; dx = dy W when dx is non-null (overwritten, or
// added to with accumulate_dx). ldy: the row stride of dy (0: out).
void linear_backward(const LinearParams& p, const float* dy, const float* x, float* dx, int N,
                     bool accumulate_bias = true, int ldy = 0, bool accumulate_dx = false);
// Its two halves, which a zero-bubble pipeline runs apart (linear_backward runs both: the same bits):
// dx = dy W (overwritten, or added to with accumulate_dx); dW += dy^T x and db += colsum(dy) when
// accumulate_bias.
void linear_backward_input(const LinearParams& p, const float* dy, float* dx, int N, int ldy = 0,
                           bool accumulate_dx = false);
void linear_backward_weight(const LinearParams& p, const float* dy, const float* x, int N, bool accumulate_bias = true,
                            int ldy = 0);

}  // namespace loom
