#pragma once
// Activations fused with the bias of the preceding linear layer (Megatron's bias_gelu / bias_swiglu).
// All are elementwise over an N x C row-major matrix, vectorised and threaded over rows; backward
// passes overwrite dx (dx may alias dy) and add column sums of dx to dbias when dbias is non-null.
// bias may be null (then dbias must be null too): the plain activation.
namespace loom::cpu {

// GELU in the tanh form (GPT-2, Megatron's default): y = gelu(x + bias[col]),
// gelu(u) = 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
void bias_gelu_forward(const float* x, const float* bias, float* y, int N, int C);
// dx = dy * gelu'(x + bias) (overwrites dx; dx may alias dy); dbias += column sums of dx.
void bias_gelu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int C);

// Exact GELU (PyTorch's F.gelu default, approximate='none'; ViT/EVA): gelu(u) = u Phi(u) =
// 0.5 u (1 + erf(u / sqrt(2))). Relative error about 1e-6 of the double-precision value everywhere
// (Phi evaluated through erfc, so negative u keep their digits).
void bias_gelu_exact_forward(const float* x, const float* bias, float* y, int N, int C);
// dx = dy * (Phi(u) + u phi(u)), u = x + bias; dbias += column sums of dx.
void bias_gelu_exact_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N,
                              int C);

// Quick GELU (OpenAI CLIP's QuickGELU): y = u sigmoid(1.702 u), u = x + bias.
void bias_quick_gelu_forward(const float* x, const float* bias, float* y, int N, int C);
// dx = dy * (s + 1.702 u s (1 - s)), s = sigmoid(1.702 u); dbias += column sums of dx.
void bias_quick_gelu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N,
                              int C);

// SwiGLU (Llama's MLP, Megatron's bias_swiglu with --swiglu): x is [N, 2F], each row the output of the
// fused fc1, columns [0, F) the gate a and [F, 2F) the up projection b (Megatron's torch.chunk(x, 2, -1)
// on each tensor-parallel rank). y [N, F] = silu(a + bias[c]) * (b + bias[F + c]), silu(u) = u sigmoid(u)
// computed as u / (1 + exp(-u)). bias is [2F] or null.
void bias_swiglu_forward(const float* x, const float* bias, float* y, int N, int F);
// dy [N, F]; dx [N, 2F] is overwritten: da = dy (b + bb) silu'(a + ba), db = dy silu(a + ba), with
// silu'(u) = s (1 + u (1 - s)), s = sigmoid(u). dbias [2F] += column sums of dx (bitwise independent of
// the thread count) when non-null. dx may alias x (each element is read before it is written).
void bias_swiglu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int F);

// out[i] += bias[col] for an N x C matrix (the bias of a linear layer, applied after its GEMM); rows ld apart
// (0: C), so one part of a wider output (SwiGLU's gate or up half) takes its own bias.
void add_bias(float* out, const float* bias, int N, int C, int ld = 0);
// dbias += column sums of dy (N x C, rows ld apart; 0: C).
void bias_backward(const float* dy, float* dbias, int N, int C, int ld = 0);

}  // namespace loom::cpu
