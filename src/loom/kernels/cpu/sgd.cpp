#include "loom/kernels/cpu/sgd.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "loom/kernels/cpu/parallel.h"

namespace loom::cpu {

namespace {

constexpr long kBlock = 16384;  // elements per task

// One element, with the vector path's operations (std::fma is the vector FMA's single rounding).
inline void sgd_one(float& p, float g, float* buf, float lr, float mom, float wd, bool first) {
  float d = wd != 0.f ? std::fma(p, wd, g) : g;
  if (buf) {
    d = first ? d : mom * *buf + d;
    *buf = d;
  }
  p = std::fma(d, -lr, p);
}

}  // namespace

void sgd_step(float* param, const float* grad, float* buf, long n, const SgdConfig& c) {
  if (n <= 0) return;
  const float lr = c.lr, mom = c.momentum, wd = c.weight_decay;
  const bool first = c.first, with_buf = buf != nullptr && mom != 0.f;
  const long blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1 && detail::worth_parallel(n))
  for (long blk = 0; blk < blocks; blk++) {
    const long i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
    const __m256 vlr = _mm256_set1_ps(-lr), vmom = _mm256_set1_ps(mom), vwd = _mm256_set1_ps(wd);
    long i = i0;
    for (; i + 8 <= i1; i += 8) {
      const __m256 p = _mm256_loadu_ps(param + i);
      __m256 d = _mm256_loadu_ps(grad + i);
      if (wd != 0.f) d = _mm256_fmadd_ps(p, vwd, d);
      if (with_buf) {
        // mul_ then add_ (alpha 1): two roundings, as torch's buf.mul_(momentum).add_(d).
        if (!first) d = _mm256_add_ps(_mm256_mul_ps(vmom, _mm256_loadu_ps(buf + i)), d);
        _mm256_storeu_ps(buf + i, d);
      }
      _mm256_storeu_ps(param + i, _mm256_fmadd_ps(d, vlr, p));
    }
    for (; i < i1; i++) sgd_one(param[i], grad[i], with_buf ? buf + i : nullptr, lr, mom, wd, first);
  }
}

}  // namespace loom::cpu
