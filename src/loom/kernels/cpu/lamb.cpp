#include "loom/kernels/cpu/lamb.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "loom/kernels/cpu/parallel.h"
#include "loom/kernels/cpu/simd.h"

namespace loom::cpu {

namespace {
constexpr long kBlock = 16384;  // elements per task and per partial sum of the norms (as adamw.cpp)

struct Consts {
  __m256 b1, b2, omb1, omb2, bc1, bc2, eps, wd;
  bool eps_inside_sqrt;
};

Consts make_consts(const LambConfig& c) {
  // Bias corrections as adamw_step: in double, then rounded once. DeepSpeed's u has none (they are in its
  // step size): dividing by 1 is exact, so the same arithmetic serves both.
  const float bc1 = c.deepspeed ? 1.0f : float(1.0 - std::pow(double(c.beta1), double(c.step)));
  const float bc2 = c.deepspeed ? 1.0f : float(1.0 - std::pow(double(c.beta2), double(c.step)));
  return {_mm256_set1_ps(c.beta1),        _mm256_set1_ps(c.beta2), _mm256_set1_ps(1.0f - c.beta1),
          _mm256_set1_ps(1.0f - c.beta2), _mm256_set1_ps(bc1),     _mm256_set1_ps(bc2),
          _mm256_set1_ps(c.eps),          _mm256_set1_ps(c.weight_decay),
          c.deepspeed && c.eps_inside_sqrt};
}

// The new moments of 8 elements.
inline void moments8(__m256 g, __m256& m, __m256& v, const Consts& k) {
  m = _mm256_fmadd_ps(k.b1, m, _mm256_mul_ps(k.omb1, g));
  v = _mm256_fmadd_ps(k.b2, v, _mm256_mul_ps(k.omb2, _mm256_mul_ps(g, g)));
}

// u of 8 elements from their updated moments and (old) weights; the one definition both phases use.
// Each operation is a correctly rounded division, square root, addition or an explicit FMA, with no
// separate multiply feeding an add that the compiler might fuse (-ffp-contract=fast) in one phase and
// not in the other, so phase 2 gets bitwise the u of phase 1. All operations are per lane, so an
// element's u does not depend on its position in a group, a block or a range either.
inline __m256 update8(__m256 m, __m256 v, __m256 w, const Consts& k) {
  const __m256 den = k.eps_inside_sqrt ? _mm256_sqrt_ps(_mm256_add_ps(_mm256_div_ps(v, k.bc2), k.eps))
                                       : _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(v, k.bc2)), k.eps);
  return _mm256_fmadd_ps(k.wd, w, _mm256_div_ps(_mm256_div_ps(m, k.bc1), den));
}

// lo, hi += the squares of the 8 lanes of x (lanes 0-3, 4-7) in double; each square is exact.
inline void add_squares8(__m256 x, __m256d& lo, __m256d& hi) {
  const __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), xh = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
  lo = _mm256_fmadd_pd(xl, xl, lo);
  hi = _mm256_fmadd_pd(xh, xh, hi);
}

inline double hsum4(__m256d lo, __m256d hi) {
  alignas(32) double t[4];
  _mm256_store_pd(t, _mm256_add_pd(lo, hi));
  return (t[0] + t[1]) + (t[2] + t[3]);
}
}  // namespace

void lamb_phase1(const float* w, const float* g, float* m, float* v, long n, const LambConfig& c, double* w_sq,
                 double* u_sq) {
  if (n <= 0) return;
  const Consts k = make_consts(c);
  // Fixed blocks of kBlock elements, each with its own partial sums, added in block order afterwards:
  // the sums do not depend on the number of threads.
  const long blocks = (n + kBlock - 1) / kBlock;
  double* part = detail::scratch_doubles(size_t(2 * blocks));
#pragma omp parallel for schedule(static) if (blocks > 1 && detail::worth_parallel(n))
  for (long blk = 0; blk < blocks; blk++) {
    const long i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
    __m256d w_lo = _mm256_setzero_pd(), w_hi = w_lo, u_lo = w_lo, u_hi = w_lo;
    long i = i0;
    for (; i + 8 <= i1; i += 8) {
      const __m256 wv = _mm256_loadu_ps(w + i);
      __m256 mv = _mm256_loadu_ps(m + i), vv = _mm256_loadu_ps(v + i);
      moments8(_mm256_loadu_ps(g + i), mv, vv, k);
      const __m256 u = update8(mv, vv, wv, k);
      _mm256_storeu_ps(m + i, mv);
      _mm256_storeu_ps(v + i, vv);
      add_squares8(wv, w_lo, w_hi);
      add_squares8(u, u_lo, u_hi);
    }
    if (i < i1) {  // the last 1..7 elements through the same vector arithmetic, masked
      const __m256i mask = detail::tail_mask(int(i1 - i));
      const __m256 wv = _mm256_maskload_ps(w + i, mask);
      __m256 mv = _mm256_maskload_ps(m + i, mask), vv = _mm256_maskload_ps(v + i, mask);
      moments8(_mm256_maskload_ps(g + i, mask), mv, vv, k);
      // The unused lanes are zeros, but their u is 0/eps (NaN if eps is 0): drop it from the sum.
      const __m256 u = _mm256_and_ps(update8(mv, vv, wv, k), _mm256_castsi256_ps(mask));
      _mm256_maskstore_ps(m + i, mask, mv);
      _mm256_maskstore_ps(v + i, mask, vv);
      add_squares8(wv, w_lo, w_hi);
      add_squares8(u, u_lo, u_hi);
    }
    part[2 * blk] = hsum4(w_lo, w_hi);
    part[2 * blk + 1] = hsum4(u_lo, u_hi);
  }
  double ws = 0.0, us = 0.0;
  for (long b = 0; b < blocks; b++) {
    ws += part[2 * b];
    us += part[2 * b + 1];
  }
  *w_sq += ws;
  *u_sq += us;
}

void lamb_phase2(float* w, const float* m, const float* v, long n, const LambConfig& c, float ratio) {
  if (n <= 0) return;
  const Consts k = make_consts(c);
  // lr * ratio first, then one fused w - s*u per element: apex's p - (ratio * update) with its
  // ratio = lr * (||w|| / ||u||), which nvcc contracts to an FMA by default. DeepSpeed's
  // pj - (step_size * lamb_coeff * update) has the same shape.
  const __m256 s = _mm256_set1_ps((c.deepspeed ? deepspeed_lamb_step_size(c) : c.lr) * ratio);
  const long blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1 && detail::worth_parallel(n))
  for (long blk = 0; blk < blocks; blk++) {
    const long i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
    long i = i0;
    for (; i + 8 <= i1; i += 8) {
      const __m256 wv = _mm256_loadu_ps(w + i);
      const __m256 u = update8(_mm256_loadu_ps(m + i), _mm256_loadu_ps(v + i), wv, k);
      _mm256_storeu_ps(w + i, _mm256_fnmadd_ps(s, u, wv));
    }
    if (i < i1) {
      const __m256i mask = detail::tail_mask(int(i1 - i));
      const __m256 wv = _mm256_maskload_ps(w + i, mask);
      const __m256 u = update8(_mm256_maskload_ps(m + i, mask), _mm256_maskload_ps(v + i, mask), wv, k);
      _mm256_maskstore_ps(w + i, mask, _mm256_fnmadd_ps(s, u, wv));
    }
  }
}

float deepspeed_lamb_step_size(const LambConfig& c) {
  if (!c.bias_correction) return c.lr;
  // fused_lamb_cuda: const float bias_correction1 = 1 - std::pow(beta1, step) (std::pow(float, int) is
  // computed in double), then lr * std::sqrt(bias_correction2) / bias_correction1 in float.
  const float bc1 = float(1.0 - std::pow(double(c.beta1), double(c.step)));
  const float bc2 = float(1.0 - std::pow(double(c.beta2), double(c.step)));
  return c.lr * std::sqrt(bc2) / bc1;
}

float lamb_trust_ratio_clamped(double w_sq, double u_sq, float min_coeff, float max_coeff) {
  if (!(w_sq > 0.0) || !(u_sq > 0.0)) return 1.0f;
  float r = float(std::sqrt(w_sq) / std::sqrt(u_sq));
  if (r > max_coeff) r = max_coeff;
  if (r < min_coeff) r = min_coeff;
  return r;
}

float lamb_trust_ratio(double w_sq, double u_sq) {
  // Written so that NaN sums also give 1 (the NaN then reaches w through u itself).
  if (!(w_sq > 0.0) || !(u_sq > 0.0)) return 1.0f;
  return float(std::sqrt(w_sq) / std::sqrt(u_sq));
}

}  // namespace loom::cpu
