#include "loom/layers/linear.h"

#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/gemm_bf16.h"

namespace loom {

namespace {

// The weight as a bf16 GEMM operand: the stored bf16 weight, or the fp32 view rounded into the scratch.
const uint16_t* bf16_weight(const LinearParams& p, const Bf16Operands& b, int out, int in) {
  if (p.weight_bf16) return p.weight_bf16;
  cpu::to_bf16_rows(p.weight.f32(), out, in, in, b.w);
  return b.w;
}

}  // namespace

void linear_forward(const LinearParams& p, const float* x, float* y, int N, bool add_bias, int ldy) {
  const int out = int(p.weight.dim(0)), in = int(p.weight.dim(1));
  if (ldy == 0) ldy = out;
  if (const Bf16Operands* b = p.bf16) {
    cpu::to_bf16_rows(x, N, in, in, b->in);
    const uint16_t* w = bf16_weight(p, *b, out, in);
    cpu::gemm_bf16(false, true, N, out, in, 1.f, b->in, in, w, in, 0.f, y, ldy);
  } else {
    cpu::gemm(false, true, N, out, in, 1.f, x, in, p.weight.f32(), in, 0.f, y, ldy);
  }
  if (add_bias && p.bias.defined()) cpu::add_bias(y, p.bias.f32(), N, out, ldy);
}

void linear_backward(const LinearParams& p, const float* dy, const float* x, float* dx, int N,
                     bool accumulate_bias, int ldy, bool accumulate_dx) {
  // The weight half first, as before the split: a caller's dx may reuse storage that x came from.
  linear_backward_weight(p, dy, x, N, accumulate_bias, ldy);
  if (!dx) return;
  if (const Bf16Operands* b = p.bf16) {
    // The output gradient is still in bf16 in b->out from the weight half: the same operand, rounded once.
    const int out = int(p.weight.dim(0)), in = int(p.weight.dim(1));
    const uint16_t* w = bf16_weight(p, *b, out, in);
    cpu::gemm_bf16(false, false, N, in, out, 1.f, b->out, out, w, in, accumulate_dx ? 1.f : 0.f, dx, in);
    return;
  }
  linear_backward_input(p, dy, dx, N, ldy, accumulate_dx);
}

void linear_backward_input(const LinearParams& p, const float* dy, float* dx, int N, int ldy, bool accumulate_dx) {
  const int out = int(p.weight.dim(0)), in = int(p.weight.dim(1));
  if (ldy == 0) ldy = out;
  const float beta = accumulate_dx ? 1.f : 0.f;
  if (const Bf16Operands* b = p.bf16) {
    cpu::to_bf16_rows(dy, N, out, ldy, b->out);
    const uint16_t* w = bf16_weight(p, *b, out, in);
    cpu::gemm_bf16(false, false, N, in, out, 1.f, b->out, out, w, in, beta, dx, in);
  } else {
    cpu::gemm(false, false, N, in, out, 1.f, dy, ldy, p.weight.f32(), in, beta, dx, in);
  }
}

void linear_backward_weight(const LinearParams& p, const float* dy, const float* x, int N, bool accumulate_bias,
                            int ldy) {
  const int out = int(p.weight.dim(0)), in = int(p.weight.dim(1));
  if (ldy == 0) ldy = out;
  if (const Bf16Operands* b = p.bf16) {
    cpu::to_bf16_rows(dy, N, out, ldy, b->out);
    cpu::to_bf16_rows(x, N, in, in, b->in);
    cpu::gemm_bf16(true, false, out, in, N, 1.f, b->out, out, b->in, in, 1.f, p.dweight.f32(), in);
  } else {
    cpu::gemm(true, false, out, in, N, 1.f, dy, ldy, x, in, 1.f, p.dweight.f32(), in);
  }
  if (accumulate_bias && p.bias.defined()) cpu::bias_backward(dy, p.dbias.f32(), N, out, ldy);
}

}  // namespace loom
