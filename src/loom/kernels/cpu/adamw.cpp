#include "loom/kernels/cpu/adamw.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "loom/kernels/cpu/convert8.h"
#include "loom/kernels/cpu/parallel.h"

namespace loom::cpu {

namespace {
constexpr long kBlock = 16384;  // elements per task (also the fixed chunk of sum_squares)
}

void adamw_step(float* param, const float* grad, float* m, float* v, long n, const AdamWConfig& c, void* rounded,
                DType rounded_type) {
  if (n <= 0) return;
  const float b1 = c.beta1, b2 = c.beta2, lr = c.lr, eps = c.eps, wd = c.weight_decay;
  const float bc1 = float(1.0 - std::pow(double(c.beta1), double(c.step)));
  const float bc2 = float(1.0 - std::pow(double(c.beta2), double(c.step)));
  const float omb1 = 1.0f - b1, omb2 = 1.0f - b2;
  const long blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1 && detail::worth_parallel(n))
  for (long blk = 0; blk < blocks; blk++) {
    const long i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
    long i = i0;
    const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), vo1 = _mm256_set1_ps(omb1),
                 vo2 = _mm256_set1_ps(omb2), vbc1 = _mm256_set1_ps(bc1), vbc2 = _mm256_set1_ps(bc2),
                 veps = _mm256_set1_ps(eps), vlr = _mm256_set1_ps(lr), vwd = _mm256_set1_ps(wd),
                 vun = _mm256_set1_ps(c.grad_unscale), vclip = _mm256_set1_ps(c.grad_clip);
    for (; i + 8 <= i1; i += 8) {
      const __m256 g = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(grad + i), vun), vclip);
      const __m256 p = _mm256_loadu_ps(param + i);
      const __m256 mm = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vo1, g));
      const __m256 vv =
          _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(vo2, _mm256_mul_ps(g, g)));
      const __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vv, vbc2)), veps);
      const __m256 upd = _mm256_add_ps(_mm256_div_ps(_mm256_div_ps(mm, vbc1), den), _mm256_mul_ps(vwd, p));
      _mm256_storeu_ps(m + i, mm);
      _mm256_storeu_ps(v + i, vv);
      const __m256 updated = _mm256_sub_ps(p, _mm256_mul_ps(vlr, upd));
      _mm256_storeu_ps(param + i, updated);
      if (rounded) store8(rounded, rounded_type, i, updated);
    }
    for (; i < i1; i++) {  // the same operations, one element at a time
      const float g = (grad[i] * c.grad_unscale) * c.grad_clip, p = param[i];
      const float mm = b1 * m[i] + omb1 * g;
      const float vv = b2 * v[i] + omb2 * (g * g);
      const float den = std::sqrt(vv / bc2) + eps;
      const float upd = (mm / bc1) / den + wd * p;
      m[i] = mm;
      v[i] = vv;
      param[i] = p - lr * upd;
      if (rounded) store1(rounded, rounded_type, i, param[i]);
    }
  }
}

double sum_squares(const float* x, long n) {
  if (n <= 0) return 0.0;
  // Fixed chunks of kBlock elements, each summed in double, then the chunk sums added in order: the
  // result does not depend on the number of threads.
  const long blocks = (n + kBlock - 1) / kBlock;
  double* part = detail::scratch_doubles(size_t(blocks));
#pragma omp parallel for schedule(static) if (blocks > 1 && detail::worth_parallel(n))
  for (long blk = 0; blk < blocks; blk++) {
    const long i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (long i = i0; i < i1; i++) s += double(x[i]) * double(x[i]);
    part[blk] = s;
  }
  double total = 0.0;
  for (long b = 0; b < blocks; b++) total += part[b];
  return total;
}

void scale_inplace(float* x, long n, float s) {
  if (n <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n))
  for (long i = 0; i < n; i++) x[i] *= s;
}

}  // namespace loom::cpu
