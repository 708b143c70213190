#include "loom/kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

#include "loom/kernels/cpu/parallel.h"

namespace loom::cpu {

void embedding_forward(const int32_t* tokens, const int32_t* positions, const float* wte, const float* wpe,
                       float* out, int N, int C, int vocab_start, int vocab_end, bool accumulate) {
  if (N <= 0 || C <= 0) return;
  const bool pos = wpe && positions;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int r = 0; r < N; r++) {
    const int t = tokens[r];
    const bool local = t >= vocab_start && t < vocab_end;
    const float* a = local ? wte + size_t(t - vocab_start) * C : nullptr;
    const float* b = pos ? wpe + size_t(positions[r]) * C : nullptr;
    float* o = out + size_t(r) * C;
    if (!accumulate) {
      if (a && b) {
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = a[c] + b[c];
      } else if (a) {
        std::memcpy(o, a, size_t(C) * sizeof(float));
      } else if (b) {
        std::memcpy(o, b, size_t(C) * sizeof(float));
      } else {
        std::memset(o, 0, size_t(C) * sizeof(float));
      }
    } else {
      if (a) {
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] += a[c];
      }
      if (b) {
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] += b[c];
      }
    }
  }
}

void embedding_backward(const float* dout, const int32_t* tokens, const int32_t* positions, float* dwte,
                        float* dwpe, int N, int C, int vocab_start, int vocab_end) {
  if (N <= 0 || C <= 0) return;
  const bool pos = dwpe && positions;
  // Threads own disjoint column ranges and every thread walks all rows in order, so each element of
  // dwte / dwpe receives its contributions in row order whatever the number of threads.
  constexpr int kColBlock = 64;
  const int nb = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int b = 0; b < nb; b++) {
    const int c0 = b * kColBlock, n = std::min(kColBlock, C - c0);
    for (int r = 0; r < N; r++) {
      const float* d = dout + size_t(r) * C + c0;
      const int t = tokens[r];
      if (dwte && t >= vocab_start && t < vocab_end) {
        float* a = dwte + size_t(t - vocab_start) * C + c0;
#pragma omp simd
        for (int c = 0; c < n; c++) a[c] += d[c];
      }
      if (pos) {
        float* p = dwpe + size_t(positions[r]) * C + c0;
#pragma omp simd
        for (int c = 0; c < n; c++) p[c] += d[c];
      }
    }
  }
}

}  // namespace loom::cpu
