#include "loom/kernels/cpu/dropout.h"

#include <algorithm>

#include "loom/kernels/cpu/parallel.h"
#include "loom/kernels/cpu/simd.h"

namespace loom::cpu {

void bias_dropout_add_forward(const float* x, const float* bias, const float* residual, float* out, int N, int C,
                              float p, uint64_t key, uint64_t first) {
  if (N <= 0 || C <= 0) return;
  const bool drop = p > 0.0f;
  const float scale = detail::dropout_scale(p);
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C * (drop ? 8 : 1)))
  for (int r = 0; r < N; r++) {
    const float* xr = x + size_t(r) * C;
    const float* rr = residual + size_t(r) * C;
    float* o = out + size_t(r) * C;
    if (drop) {
      float* m = detail::scratch_floats(size_t(C), 1);
      detail::dropout_scales(key, first + uint64_t(r) * uint64_t(C), C, p, scale, m);
      if (bias) {
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = rr[c] + (xr[c] + bias[c]) * m[c];
      } else {
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = rr[c] + xr[c] * m[c];
      }
    } else if (bias) {
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = rr[c] + (xr[c] + bias[c]);
    } else {
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = rr[c] + xr[c];
    }
  }
}

void bias_dropout_add_backward(const float* dout, float* dx, float* dbias, int N, int C, float p, uint64_t key,
                               uint64_t first) {
  const bool drop = p > 0.0f;
  const float scale = detail::dropout_scale(p);
  detail::rows_with_column_sum(N, C, dbias, [&](int r, float* acc) {
    const float* d = dout + size_t(r) * C;
    float* o = dx + size_t(r) * C;
    if (drop) {
      float* m = detail::scratch_floats(size_t(C), 1);
      detail::dropout_scales(key, first + uint64_t(r) * uint64_t(C), C, p, scale, m);
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = d[c] * m[c];
    } else if (o != d) {
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = d[c];
    }
    if (acc) {
#pragma omp simd
      for (int c = 0; c < C; c++) acc[c] += o[c];
    }
  });
}

namespace {
constexpr long kDropBlock = 4096;  // elements per task

void dropout_inplace(float* x, long n, float p, uint64_t key, uint64_t first) {
  if (n <= 0 || p <= 0.0f) return;
  const float scale = detail::dropout_scale(p);
  const long blocks = (n + kDropBlock - 1) / kDropBlock;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n * 8))
  for (long b = 0; b < blocks; b++) {
    const long i0 = b * kDropBlock, len = std::min(kDropBlock, n - i0);
    float* m = detail::scratch_floats(size_t(kDropBlock), 1);
    detail::dropout_scales(key, first + uint64_t(i0), len, p, scale, m);
    float* xb = x + i0;
#pragma omp simd
    for (long i = 0; i < len; i++) xb[i] *= m[i];
  }
}
}  // namespace

void dropout_forward(float* x, long n, float p, uint64_t key, uint64_t first) { dropout_inplace(x, n, p, key, first); }
void dropout_backward(float* dx, long n, float p, uint64_t key, uint64_t first) {
  dropout_inplace(dx, n, p, key, first);
}

}  // namespace loom::cpu
