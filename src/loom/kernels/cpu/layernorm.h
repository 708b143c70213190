#pragma once
// LayerNorm over the last dimension C of N rows: y = (x - mean) * rstd * weight + bias.
// mean and rstd (N floats each) are saved for the backward pass, as in llm.c.
namespace loom::cpu {

void layernorm_forward(const float* x, const float* weight, const float* bias, float* y, float* mean,
                       float* rstd, int N, int C, float eps);

// dx += d/dx; dweight += ...; dbias += ... (all accumulate, so residual-stream gradients and
// gradient accumulation over micro-batches need no extra pass).
void layernorm_backward(const float* dy, const float* x, const float* weight, const float* mean,
                        const float* rstd, float* dx, float* dweight, float* dbias, int N, int C);

}  // namespace loom::cpu
