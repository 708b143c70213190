#include "loom/kernels/cpu/layernorm.h"

#include <cmath>
#include <cstring>

#include "loom/kernels/cpu/parallel.h"

namespace loom::cpu {

void layernorm_forward(const float* x, const float* weight, const float* bias, float* y, float* mean, float* rstd,
                       int N, int C, float eps) {
  if (N <= 0 || C <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int r = 0; r < N; r++) {
    const float* xr = x + size_t(r) * C;
    float* yr = y + size_t(r) * C;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++) s += xr[c];
    const float m = s / float(C);
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) {
      const float d = xr[c] - m;
      v += d * d;
    }
    const float rs = 1.0f / std::sqrt(v / float(C) + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) yr[c] = (xr[c] - m) * rs * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = rs;
  }
}

void layernorm_backward(const float* dy, const float* x, const float* weight, const float* mean, const float* rstd,
                        float* dx, float* dweight, float* dbias, int N, int C) {
  if (N <= 0 || C <= 0) return;
  // Rows are split into a fixed number of chunks (a function of N only); each chunk sums its dweight and
  // dbias contributions into its own partial, and the partials are added in chunk order afterwards.
  const int chunks = detail::reduction_chunks(N);
  float* part = detail::scratch_floats(size_t(chunks) * 2 * C);
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int ch = 0; ch < chunks; ch++) {
    float* pw = part + size_t(ch) * 2 * C;
    float* pb = pw + C;
    std::memset(pw, 0, size_t(2 * C) * sizeof(float));
    const int rb = int(detail::chunk_begin(N, chunks, ch)), re = int(detail::chunk_begin(N, chunks, ch + 1));
    for (int r = rb; r < re; r++) {
      const float* dyr = dy + size_t(r) * C;
      const float* xr = x + size_t(r) * C;
      float* dxr = dx + size_t(r) * C;
      const float m = mean[r], rs = rstd[r];
      float a = 0.0f, bsum = 0.0f;  // sum(dnorm), sum(dnorm * norm)
#pragma omp simd reduction(+ : a, bsum)
      for (int c = 0; c < C; c++) {
        const float nrm = (xr[c] - m) * rs;
        const float dn = dyr[c] * weight[c];
        a += dn;
        bsum += dn * nrm;
        pw[c] += dyr[c] * nrm;
        pb[c] += dyr[c];
      }
      const float ma = a / float(C), mb = bsum / float(C);
#pragma omp simd
      for (int c = 0; c < C; c++) {
        const float nrm = (xr[c] - m) * rs;
        const float dn = dyr[c] * weight[c];
        dxr[c] += rs * (dn - ma - nrm * mb);
      }
    }
  }
  detail::reduce_partials(part, chunks, 2 * C, C, dweight, 0);
  detail::reduce_partials(part, chunks, 2 * C, C, dbias, C);
}

}  // namespace loom::cpu
