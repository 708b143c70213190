#pragma once
// TEMPORARY SHIM (replaced by the kernels branch)
namespace loom::cpu {
void rmsnorm_forward(const float* x, const float* weight, float* y, float* rstd, int N, int C, float eps);
void rmsnorm_backward(const float* dy, const float* x, const float* weight, const float* rstd, float* dx,
                      float* dweight, int N, int C);
}
