#include "loom/kernels/cpu/activation.h"

#include <immintrin.h>

#include "loom/kernels/cpu/parallel.h"
#include "loom/kernels/cpu/simd.h"

namespace loom::cpu {

namespace {

// gelu(u) = 0.5 u (1 + tanh(z)), z = sqrt(2/pi) (u + 0.044715 u^3), evaluated as u * sigmoid(2z)
// (the same function: 1 + tanh(z) = 2 sigmoid(2z)), which has no cancellation for negative u.
// gelu'(u) = s + 2 u s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 u^2) with s = sigmoid(2z) = 1 / (1 + e),
// e = exp(-2z), and 1 - s = e s.
constexpr float kK = 0.7978845608028654f;
constexpr float kA = 0.044715f;

template <bool kGrad>
inline __m256 gelu8(__m256 u) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 u2 = _mm256_mul_ps(u, u);
  const __m256 z = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(kK), u), _mm256_fmadd_ps(_mm256_set1_ps(kA), u2, one));
  const __m256 e = detail::exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), z));
  const __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, e));
  if constexpr (!kGrad) {
    return _mm256_mul_ps(u, sg);
  } else {
    const __m256 dz = _mm256_mul_ps(_mm256_set1_ps(kK), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * kA), u2, one));
    const __m256 oms = _mm256_mul_ps(e, sg);  // 1 - s, without cancellation
    const __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(u, u), sg), oms);
    return _mm256_fmadd_ps(t, dz, sg);
  }
}

inline __m256 load_or_zero(const float* p, int c) { return p ? _mm256_loadu_ps(p + c) : _mm256_setzero_ps(); }
inline __m256 mload_or_zero(const float* p, int c, __m256i m) {
  return p ? _mm256_maskload_ps(p + c, m) : _mm256_setzero_ps();
}

}  // namespace

void bias_gelu_forward(const float* x, const float* bias, float* y, int N, int C) {
  if (N <= 0 || C <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C * 4))
  for (int r = 0; r < N; r++) {
    const float* xr = x + size_t(r) * C;
    float* yr = y + size_t(r) * C;
    int c = 0;
    for (; c + 8 <= C; c += 8)
      _mm256_storeu_ps(yr + c, gelu8<false>(_mm256_add_ps(_mm256_loadu_ps(xr + c), load_or_zero(bias, c))));
    if (c < C) {
      const __m256i m = detail::tail_mask(C - c);
      _mm256_maskstore_ps(yr + c, m, gelu8<false>(_mm256_add_ps(_mm256_maskload_ps(xr + c, m), mload_or_zero(bias, c, m))));
    }
  }
}

void bias_gelu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int C) {
  detail::rows_with_column_sum(N, C, dbias, [&](int r, float* acc) {
    const float* dyr = dy + size_t(r) * C;
    const float* xr = x + size_t(r) * C;
    float* dxr = dx + size_t(r) * C;
    int c = 0;
    for (; c + 8 <= C; c += 8) {
      const __m256 g = gelu8<true>(_mm256_add_ps(_mm256_loadu_ps(xr + c), load_or_zero(bias, c)));
      const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(dyr + c), g);
      _mm256_storeu_ps(dxr + c, d);
      if (acc) _mm256_storeu_ps(acc + c, _mm256_add_ps(_mm256_loadu_ps(acc + c), d));
    }
    if (c < C) {
      const __m256i m = detail::tail_mask(C - c);
      const __m256 g = gelu8<true>(_mm256_add_ps(_mm256_maskload_ps(xr + c, m), mload_or_zero(bias, c, m)));
      const __m256 d = _mm256_mul_ps(_mm256_maskload_ps(dyr + c, m), g);
      _mm256_maskstore_ps(dxr + c, m, d);
      if (acc) _mm256_maskstore_ps(acc + c, m, _mm256_add_ps(_mm256_maskload_ps(acc + c, m), d));
    }
  });
}

void add_bias(float* out, const float* bias, int N, int C) {
  if (N <= 0 || C <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int r = 0; r < N; r++) {
    float* o = out + size_t(r) * C;
#pragma omp simd
    for (int c = 0; c < C; c++) o[c] += bias[c];
  }
}

void bias_backward(const float* dy, float* dbias, int N, int C) {
  if (!dbias) return;
  detail::rows_with_column_sum(N, C, dbias, [&](int r, float* acc) {
    const float* d = dy + size_t(r) * C;
#pragma omp simd
    for (int c = 0; c < C; c++) acc[c] += d[c];
  });
}

}  // namespace loom::cpu
