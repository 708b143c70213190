#pragma once
// RMSNorm over the last dimension C of N rows (Llama; Megatron/TE's RMSNorm and Hugging Face's LlamaRMSNorm,
// computed in fp32 as they compute it): y = (x * rstd) * weight, rstd = 1 / sqrt(mean(x^2) + eps).
// rstd (N floats) is saved for the backward pass. There is no bias and no mean subtraction.
namespace loom::cpu {

// y and x may not alias. rstd[r] is written for every row r < N.
void rmsnorm_forward(const float* x, const float* weight, float* y, float* rstd, int N, int C, float eps);

// Same accumulate convention as layernorm_backward: dx += d/dx (so a residual-stream gradient needs no
// extra pass) and dweight += sum over rows of dy * x * rstd (gradient accumulation over micro-batches).
// dweight may be null. dweight is summed over a fixed partition of the rows (a function of N only) and
// the partials are added in a fixed order, so it is bitwise the same for any number of threads.
void rmsnorm_backward(const float* dy, const float* x, const float* weight, const float* rstd, float* dx,
                      float* dweight, int N, int C);

}  // namespace loom::cpu
