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

// Activation functors: fwd(u) = f(u), grad(u) = f'(u), 8 lanes at a time.
struct GeluTanh {
  static __m256 fwd(__m256 u) { return gelu8<false>(u); }
  static __m256 grad(__m256 u) { return gelu8<true>(u); }
};

// Exact GELU: gelu(u) = u Phi(u), gelu'(u) = Phi(u) + u phi(u), with Phi the standard normal CDF and phi its
// density. Phi(-|u|) = erfc(z) / 2 with z = |u| / sqrt(2), from the Chebyshev fit of Numerical Recipes'
// erfcc (relative error below 1.2e-7 for every z >= 0): erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2).
// exp(-z^2) = exp(-u^2/2) is evaluated as exp(-h/2) (1 - l/2) where h + l = u^2 exactly (h = u*u, l by an
// FMA), and exp(P(t)) separately, so the result keeps its relative accuracy far into the tail (no
// cancellation for negative u, where 1 + erf(u/sqrt(2)) would lose all digits).
struct GeluErf {
  static void phi(__m256 u, __m256& cdf, __m256& pdf) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), u);  // |u|
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.35355339059327373f), a, one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    const __m256 h = _mm256_mul_ps(a, a);
    __m256 l = _mm256_fmsub_ps(a, a, h);                                     // a*a - h, exactly
    l = _mm256_and_ps(l, _mm256_cmp_ps(h, _mm256_set1_ps(INFINITY), _CMP_LT_OQ));  // 0 when h is inf/NaN
    const __m256 g = _mm256_mul_ps(detail::exp8(_mm256_mul_ps(_mm256_set1_ps(-0.5f), h)),
                                   _mm256_fnmadd_ps(half, l, one));          // exp(-u^2/2)
    const __m256 q = _mm256_mul_ps(_mm256_mul_ps(half, t), _mm256_mul_ps(detail::exp8(p), g));  // Phi(-|u|)
    const __m256 neg = _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_LT_OQ);
    cdf = _mm256_blendv_ps(_mm256_sub_ps(one, q), q, neg);
    pdf = _mm256_mul_ps(_mm256_set1_ps(0.3989422804014327f), g);
  }
  static __m256 fwd(__m256 u) {
    __m256 cdf, pdf;
    phi(u, cdf, pdf);
    return _mm256_mul_ps(u, cdf);
  }
  static __m256 grad(__m256 u) {
    __m256 cdf, pdf;
    phi(u, cdf, pdf);
    return _mm256_fmadd_ps(u, pdf, cdf);
  }
};

// u sigmoid(k u) and its derivative s + k u s (1 - s), s = 1 / (1 + e), e = exp(-k u), 1 - s = e s.
template <int kNum, int kDen>
struct SigmoidGate {
  static constexpr float k = float(kNum) / float(kDen);
  static __m256 fwd(__m256 u) {
    const __m256 e = detail::exp8(_mm256_mul_ps(_mm256_set1_ps(-k), u));
    return _mm256_div_ps(u, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
  }
  static __m256 grad(__m256 u) {
    const __m256 e = detail::exp8(_mm256_mul_ps(_mm256_set1_ps(-k), u));
    const __m256 s = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    const __m256 oms = _mm256_mul_ps(e, s);
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(k), u), s), oms, s);
  }
};
using QuickGelu = SigmoidGate<1702, 1000>;  // x sigmoid(1.702 x)
using Silu = SigmoidGate<1, 1>;

template <class Act>
void bias_act_forward(const float* x, const float* bias, float* y, int N, int C) {
  if (N <= 0 || C <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C * 4))
  for (int r = 0; r < N; r++) {
    const float* xr = x + size_t(r) * C;
    float* yr = y + size_t(r) * C;
    int c = 0;
    for (; c + 8 <= C; c += 8)
      _mm256_storeu_ps(yr + c, Act::fwd(_mm256_add_ps(_mm256_loadu_ps(xr + c), load_or_zero(bias, c))));
    if (c < C) {
      const __m256i m = detail::tail_mask(C - c);
      _mm256_maskstore_ps(yr + c, m, Act::fwd(_mm256_add_ps(_mm256_maskload_ps(xr + c, m), mload_or_zero(bias, c, m))));
    }
  }
}

template <class Act>
void bias_act_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int C) {
  detail::rows_with_column_sum(N, C, dbias, [&](int r, float* acc) {
    const float* dyr = dy + size_t(r) * C;
    const float* xr = x + size_t(r) * C;
    float* dxr = dx + size_t(r) * C;
    int c = 0;
    for (; c + 8 <= C; c += 8) {
      const __m256 g = Act::grad(_mm256_add_ps(_mm256_loadu_ps(xr + c), load_or_zero(bias, c)));
      const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(dyr + c), g);
      _mm256_storeu_ps(dxr + c, d);
      if (acc) _mm256_storeu_ps(acc + c, _mm256_add_ps(_mm256_loadu_ps(acc + c), d));
    }
    if (c < C) {
      const __m256i m = detail::tail_mask(C - c);
      const __m256 g = Act::grad(_mm256_add_ps(_mm256_maskload_ps(xr + c, m), mload_or_zero(bias, c, m)));
      const __m256 d = _mm256_mul_ps(_mm256_maskload_ps(dyr + c, m), g);
      _mm256_maskstore_ps(dxr + c, m, d);
      if (acc) _mm256_maskstore_ps(acc + c, m, _mm256_add_ps(_mm256_maskload_ps(acc + c, m), d));
    }
  });
}

// SwiGLU on 8 columns: u = a + ba, v = b + bb; y = silu(u) v.
inline __m256 swiglu8(__m256 u, __m256 v) { return _mm256_mul_ps(Silu::fwd(u), v); }
// da = dy v silu'(u), db = dy silu(u).
inline void swiglu_grad8(__m256 dy, __m256 u, __m256 v, __m256& da, __m256& db) {
  da = _mm256_mul_ps(_mm256_mul_ps(dy, v), Silu::grad(u));
  db = _mm256_mul_ps(dy, Silu::fwd(u));
}

}  // namespace

void bias_gelu_forward(const float* x, const float* bias, float* y, int N, int C) {
  bias_act_forward<GeluTanh>(x, bias, y, N, C);
}
void bias_gelu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int C) {
  bias_act_backward<GeluTanh>(dy, x, bias, dx, dbias, N, C);
}
void bias_gelu_exact_forward(const float* x, const float* bias, float* y, int N, int C) {
  bias_act_forward<GeluErf>(x, bias, y, N, C);
}
void bias_gelu_exact_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N,
                              int C) {
  bias_act_backward<GeluErf>(dy, x, bias, dx, dbias, N, C);
}
void bias_quick_gelu_forward(const float* x, const float* bias, float* y, int N, int C) {
  bias_act_forward<QuickGelu>(x, bias, y, N, C);
}
void bias_quick_gelu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N,
                              int C) {
  bias_act_backward<QuickGelu>(dy, x, bias, dx, dbias, N, C);
}

void bias_swiglu_forward(const float* x, const float* bias, float* y, int N, int F) {
  if (N <= 0 || F <= 0) return;
  const float* ba = bias;
  const float* bb = bias ? bias + F : nullptr;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * F * 4))
  for (int r = 0; r < N; r++) {
    const float* a = x + size_t(r) * 2 * F;
    const float* b = a + F;
    float* yr = y + size_t(r) * F;
    int c = 0;
    for (; c + 8 <= F; c += 8) {
      const __m256 u = _mm256_add_ps(_mm256_loadu_ps(a + c), load_or_zero(ba, c));
      const __m256 v = _mm256_add_ps(_mm256_loadu_ps(b + c), load_or_zero(bb, c));
      _mm256_storeu_ps(yr + c, swiglu8(u, v));
    }
    if (c < F) {
      const __m256i m = detail::tail_mask(F - c);
      const __m256 u = _mm256_add_ps(_mm256_maskload_ps(a + c, m), mload_or_zero(ba, c, m));
      const __m256 v = _mm256_add_ps(_mm256_maskload_ps(b + c, m), mload_or_zero(bb, c, m));
      _mm256_maskstore_ps(yr + c, m, swiglu8(u, v));
    }
  }
}

void bias_swiglu_backward(const float* dy, const float* x, const float* bias, float* dx, float* dbias, int N, int F) {
  const float* ba = bias;
  const float* bb = bias ? bias + F : nullptr;
  // The column sums run over the 2F columns of dx: acc[c] for the gate, acc[F + c] for the up half.
  detail::rows_with_column_sum(N, 2 * F, dbias, [&](int r, float* acc) {
    const float* dyr = dy + size_t(r) * F;
    const float* a = x + size_t(r) * 2 * F;
    const float* b = a + F;
    float* da = dx + size_t(r) * 2 * F;
    float* db = da + F;
    int c = 0;
    __m256 ga, gb;
    for (; c + 8 <= F; c += 8) {
      const __m256 u = _mm256_add_ps(_mm256_loadu_ps(a + c), load_or_zero(ba, c));
      const __m256 v = _mm256_add_ps(_mm256_loadu_ps(b + c), load_or_zero(bb, c));
      swiglu_grad8(_mm256_loadu_ps(dyr + c), u, v, ga, gb);
      _mm256_storeu_ps(da + c, ga);
      _mm256_storeu_ps(db + c, gb);
      if (acc) {
        _mm256_storeu_ps(acc + c, _mm256_add_ps(_mm256_loadu_ps(acc + c), ga));
        _mm256_storeu_ps(acc + F + c, _mm256_add_ps(_mm256_loadu_ps(acc + F + c), gb));
      }
    }
    if (c < F) {
      const __m256i m = detail::tail_mask(F - c);
      const __m256 u = _mm256_add_ps(_mm256_maskload_ps(a + c, m), mload_or_zero(ba, c, m));
      const __m256 v = _mm256_add_ps(_mm256_maskload_ps(b + c, m), mload_or_zero(bb, c, m));
      swiglu_grad8(_mm256_maskload_ps(dyr + c, m), u, v, ga, gb);
      _mm256_maskstore_ps(da + c, m, ga);
      _mm256_maskstore_ps(db + c, m, gb);
      if (acc) {
        _mm256_maskstore_ps(acc + c, m, _mm256_add_ps(_mm256_maskload_ps(acc + c, m), ga));
        _mm256_maskstore_ps(acc + F + c, m, _mm256_add_ps(_mm256_maskload_ps(acc + F + c, m), gb));
      }
    }
  });
}

void add_bias(float* out, const float* bias, int N, int C, int ld) {
  if (N <= 0 || C <= 0) return;
  if (ld == 0) ld = C;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * C))
  for (int r = 0; r < N; r++) {
    float* o = out + size_t(r) * ld;
#pragma omp simd
    for (int c = 0; c < C; c++) o[c] += bias[c];
  }
}

void bias_backward(const float* dy, float* dbias, int N, int C, int ld) {
  if (!dbias) return;
  if (ld == 0) ld = C;
  detail::rows_with_column_sum(N, C, dbias, [&](int r, float* acc) {
    const float* d = dy + size_t(r) * ld;
#pragma omp simd
    for (int c = 0; c < C; c++) acc[c] += d[c];
  });
}

}  // namespace loom::cpu
