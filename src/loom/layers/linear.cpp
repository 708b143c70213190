#include "loom/layers/linear.h"

#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/gemm_bf16.h"

namespace loom {

void linear_forward(const LinearParams& p, const float* x, float* y, int N, bool add_bias) {
  const int out = int(p.weight.dim(0)), in = int(p.weight.dim(1));
  if (const Bf16Operands* b = p.bf16) {
    cpu::to_bf16_rows(x, N, in, in, b->in);
    cpu::to_bf16_rows(p.weight.f32(), out, in, in, b->w);
    cpu::gemm_bf16(false, true, N, out, in, 1.f, b->in, in, b->w, in, 0.f, y, out);
  } else {
    cpu::gemm(false, true, N, out, in, 1.f, x, in, p.weight.f32(), in, 0.f, y, out);
  }
  if (add_bias && p.bias.defined()) cpu::add_bias(y, p.bias.f32(), N, out);
}

void linear_backward(const LinearParams& p, const float* dy, const float* x, float* dx, int N,
                     bool accumulate_bias) {
  const int out = int(p.weight.dim(0)), in = int(p.weight.dim(1));
  if (const Bf16Operands* b = p.bf16) {
    cpu::to_bf16_rows(dy, N, out, out, b->out);
    cpu::to_bf16_rows(x, N, in, in, b->in);
    cpu::gemm_bf16(true, false, out, in, N, 1.f, b->out, out, b->in, in, 1.f, p.dweight.f32(), in);
    if (dx) {
      cpu::to_bf16_rows(p.weight.f32(), out, in, in, b->w);
      cpu::gemm_bf16(false, false, N, in, out, 1.f, b->out, out, b->w, in, 0.f, dx, in);
    }
  } else {
    cpu::gemm(true, false, out, in, N, 1.f, dy, out, x, in, 1.f, p.dweight.f32(), in);
    if (dx) cpu::gemm(false, false, N, in, out, 1.f, dy, out, p.weight.f32(), in, 0.f, dx, in);
  }
  if (accumulate_bias && p.bias.defined()) cpu::bias_backward(dy, p.dbias.f32(), N, out);
}

}  // namespace loom
