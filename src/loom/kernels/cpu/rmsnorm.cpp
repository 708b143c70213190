#include "loom/kernels/cpu/rmsnorm.h"

#include <cmath>
#include <cstring>

#include "loom/kernels/cpu/parallel.h"

namespace loom::cpu {

void rmsnorm_forward(const float* x, const float* weight, float* y, float* rstd, int N, int C, float eps) {
  if (N <= 0 || C <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int r = 0; r < N; r++) {
    const float* xr = x + size_t(r) * C;
    float* yr = y + size_t(r) * C;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++) s += xr[c] * xr[c];
    const float rs = 1.0f / std::sqrt(s / float(C) + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) yr[c] = (xr[c] * rs) * weight[c];
    rstd[r] = rs;
  }
}

// With n = x * rstd and y = n * w: dn = dy * w, dx = rstd * (dn - n * mean(dn * n)), dw = sum_r dy * n.
void rmsnorm_backward(const float* dy, const float* x, const float* weight, const float* rstd, float* dx,
                      float* dweight, int N, int C) {
  if (N <= 0 || C <= 0) return;
  // As layernorm_backward: a fixed number of row chunks (a function of N only), one dweight partial each,
  // added in chunk order afterwards.
  const int chunks = detail::reduction_chunks(N);
  float* part = dweight ? detail::scratch_floats(size_t(chunks) * C) : nullptr;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int ch = 0; ch < chunks; ch++) {
    float* pw = part ? part + size_t(ch) * C : nullptr;
    if (pw) std::memset(pw, 0, size_t(C) * sizeof(float));
    const int rb = int(detail::chunk_begin(N, chunks, ch)), re = int(detail::chunk_begin(N, chunks, ch + 1));
    for (int r = rb; r < re; r++) {
      const float* dyr = dy + size_t(r) * C;
      const float* xr = x + size_t(r) * C;
      float* dxr = dx + size_t(r) * C;
      const float rs = rstd[r];
      float a = 0.0f;  // sum(dn * n)
#pragma omp simd reduction(+ : a)
      for (int c = 0; c < C; c++) a += (dyr[c] * weight[c]) * (xr[c] * rs);
      if (pw) {
#pragma omp simd
        for (int c = 0; c < C; c++) pw[c] += dyr[c] * (xr[c] * rs);
      }
      const float ma = a / float(C);
#pragma omp simd
      for (int c = 0; c < C; c++) {
        const float nrm = xr[c] * rs;
        dxr[c] += rs * (dyr[c] * weight[c] - nrm * ma);
      }
    }
  }
  detail::reduce_partials(part, chunks, C, C, dweight, 0);
}

}  // namespace loom::cpu
