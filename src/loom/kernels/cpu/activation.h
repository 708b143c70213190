#pragma once
// GELU in the tanh form, fused with the bias of the preceding linear layer (Megatron's bias_gelu):
// y = gelu(x + bias[col]), gelu(u) = 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
namespace loom::cpu {

void bias_gelu_forward(const float* x, const float* bias, float* y, int N, int C);
// dx = dy * gelu'(x + bias) (overwrites dx; dx may alias dy); dbias += column sums of dx.
// bias may be null (then dbias must be null too): the plain GELU.
void bias_gelu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int C);

// out[i] += bias[col] for an N x C matrix (the bias of a linear layer, applied after its GEMM).
void add_bias(float* out, const float* bias, int N, int C);
// dbias += column sums of dy (N x C).
void bias_backward(const float* dy, float* dbias, int N, int C);

// TEMPORARY SHIM declarations (replaced by the kernels branch)
void bias_swiglu_forward(const float* x, const float* bias, float* y, int N, int F);
void bias_swiglu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int F);
void bias_gelu_exact_forward(const float* x, const float* bias, float* y, int N, int C);
void bias_gelu_exact_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int C);
void bias_quick_gelu_forward(const float* x, const float* bias, float* y, int N, int C);
void bias_quick_gelu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int C);
}  // namespace loom::cpu
