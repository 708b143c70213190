#include "loom/kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/parallel.h"
#include "loom/kernels/cpu/simd.h"

namespace loom::cpu {

void lm_head_cross_entropy(const float* x, const float* W, const int32_t* labels, const float* row_scale,
                           float* loss, float* dx, float* dW, int N, int V, int C, LmHeadScratch scratch) {
  if (N <= 0 || V <= 0) return;
  const int chunk = std::max(1, std::min(scratch.chunk_rows, N));
  float* L = scratch.logits;
  const bool grad = dx != nullptr;
  for (int n0 = 0; n0 < N; n0 += chunk) {
    const int rows = std::min(chunk, N - n0);
    const float* xc = x + size_t(n0) * C;
    gemm(false, true, rows, V, C, 1.0f, xc, C, W, C, 0.0f, L, V);
#pragma omp parallel for schedule(static) if (rows > 1)
    for (int i = 0; i < rows; i++) {
      const int r = n0 + i;
      float* row = L + size_t(i) * V;
      const int32_t label = labels[r];
      const bool valid = label >= 0 && label < V;
      const float target = valid ? row[label] : 0.0f;
      const float m = detail::max_array(row, V);
      float sum;
      if (grad) {
        sum = detail::exp_sub_sum<true>(row, V, m);
      } else {
        sum = detail::exp_sub_sum<false>(row, V, m);
      }
      loss[r] = valid ? (m + std::log(sum)) - target : 0.0f;
      if (!grad) continue;
      const float rs = valid ? (row_scale ? row_scale[r] : 1.0f) : 0.0f;
      if (rs == 0.0f) {
        std::memset(row, 0, size_t(V) * sizeof(float));
        continue;
      }
      const float f = rs / sum;
#pragma omp simd
      for (int j = 0; j < V; j++) row[j] *= f;
      row[label] -= rs;
    }
    if (grad) {
      gemm(false, false, rows, C, V, 1.0f, L, V, W, C, 0.0f, dx + size_t(n0) * C, C);
      gemm(true, false, V, C, rows, 1.0f, L, V, xc, C, 1.0f, dW, C);
    }
  }
}

void lm_head_logits(const float* x, const float* W, float* logits, int N, int V, int C) {
  gemm(false, true, N, V, C, 1.0f, x, C, W, C, 0.0f, logits, V);
}

void softmax_rows(float* x, int N, int V) {
  if (N <= 0 || V <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * V * 4))
  for (int r = 0; r < N; r++) {
    float* row = x + size_t(r) * V;
    const float m = detail::max_array(row, V);
    const float inv = 1.0f / detail::exp_sub_sum<true>(row, V, m);
#pragma omp simd
    for (int j = 0; j < V; j++) row[j] *= inv;
  }
}

}  // namespace loom::cpu
