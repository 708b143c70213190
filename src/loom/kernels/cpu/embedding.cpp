#include "loom/kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

#include "loom/kernels/cpu/parallel.h"

namespace loom::cpu {

void embedding_forward(const int32_t* tokens, const int32_t* positions, const float* wte, const float* wpe,
                       float* out, int N, int C) {
  if (N <= 0 || C <= 0) return;
  const bool pos = wpe && positions;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int r = 0; r < N; r++) {
    const float* a = wte + size_t(tokens[r]) * C;
    float* o = out + size_t(r) * C;
    if (pos) {
      const float* b = wpe + size_t(positions[r]) * C;
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = a[c] + b[c];
    } else {
      std::memcpy(o, a, size_t(C) * sizeof(float));
    }
  }
}

void embedding_backward(const float* dout, const int32_t* tokens, const int32_t* positions, float* dwte,
                        float* dwpe, int N, int C) {
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
      float* a = dwte + size_t(tokens[r]) * C + c0;
#pragma omp simd
      for (int c = 0; c < n; c++) a[c] += d[c];
      if (pos) {
        float* p = dwpe + size_t(positions[r]) * C + c0;
#pragma omp simd
        for (int c = 0; c < n; c++) p[c] += d[c];
      }
    }
  }
}

}  // namespace loom::cpu
