#pragma once
// Internal AVX2/FMA helpers for the CPU kernels (the build always has -mavx2 -mfma, or -march=native on
// an AVX-512 machine, which includes them). Vectorised exp, softmax building blocks and a batched
// Philox4x32-10 that produces exactly the numbers of loom::Philox4x32::generate.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "loom/core/rng.h"

namespace loom::cpu::detail {

// exp(x) for 8 floats: Cephes-style range reduction and degree-5 polynomial (about 1 ulp).
// Inputs below -87.3 give 0, above 88.37 are clamped (the result is ~2.4e38, never inf); NaN stays NaN.
inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f);
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);  // false for NaN
  x = _mm256_min_ps(hi, x);                              // min/max return the second operand for NaN
  x = _mm256_max_ps(lo, x);
  __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  __m256 x2 = _mm256_mul_ps(x, x);
  y = _mm256_fmadd_ps(y, x2, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(under, y);
}

// Scalar exp with exactly the same arithmetic (for tails), so a value does not depend on its position.
inline float exp1(float x) {
  alignas(32) float b[8] = {x, 0, 0, 0, 0, 0, 0, 0};
  _mm256_store_ps(b, exp8(_mm256_load_ps(b)));
  return b[0];
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i tail_mask(int r) {  // first r (0..8) lanes set
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx);
}

inline float max_array(const float* x, long n) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
  long i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  float m = hmax8(_mm256_max_ps(m0, m1));
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

// x[i] = exp(x[i] - sub) for i < n (if store), returns the sum of those exponentials.
template <bool kStore>
inline float exp_sub_sum(float* x, long n, float sub) {
  const __m256 vs = _mm256_set1_ps(sub);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  long i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 a = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    __m256 b = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
    if constexpr (kStore) {
      _mm256_storeu_ps(x + i, a);
      _mm256_storeu_ps(x + i + 8, b);
    }
    s0 = _mm256_add_ps(s0, a);
    s1 = _mm256_add_ps(s1, b);
  }
  for (; i < n; i += 8) {
    __m256i m = tail_mask(int(n - i < 8 ? n - i : 8));
    __m256 a = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vs));
    a = _mm256_and_ps(a, _mm256_castsi256_ps(m));
    if constexpr (kStore) _mm256_maskstore_ps(x + i, m, a);
    s0 = _mm256_add_ps(s0, a);
  }
  return hsum8(_mm256_add_ps(s0, s1));
}

// ---- Philox4x32-10, 8 counters at a time ----
inline void mulhilo8(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0,2,4,6 as 64-bit products
  __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1,3,5,7
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// out[4*j + w] = word w of Philox4x32::generate(key, ctr0 + j) for j < 8.
inline void philox8(uint64_t key, uint64_t ctr0, uint32_t* out) {
  const __m256i j8 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  // 64-bit counters ctr0 + j, split in low and high words.
  uint32_t lo0 = uint32_t(ctr0), hi0 = uint32_t(ctr0 >> 32);
  __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(int(lo0)), j8);
  // carry where the low word wrapped: (c0 < lo0) unsigned
  __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(_mm256_set1_epi32(int(lo0)), _mm256_set1_epi32(INT32_MIN)),
                                     _mm256_xor_si256(c0, _mm256_set1_epi32(INT32_MIN)));
  __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32(int(hi0)), carry);
  __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  const __m256i M0 = _mm256_set1_epi32(int(0xD2511F53u)), M1 = _mm256_set1_epi32(int(0xCD9E8D57u));
  for (int r = 0; r < 10; r++) {
    __m256i hi0v, lo0v, hi1v, lo1v;
    mulhilo8(c0, M0, hi0v, lo0v);
    mulhilo8(c2, M1, hi1v, lo1v);
    __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1v, c1), _mm256_set1_epi32(int(k0)));
    __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0v, c3), _mm256_set1_epi32(int(k1)));
    c0 = n0;
    c1 = lo1v;
    c2 = n2;
    c3 = lo0v;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  // 4 x 8 transpose to counter-major order.
  __m256i t0 = _mm256_unpacklo_epi32(c0, c1);  // c0[0] c1[0] c0[1] c1[1] | c0[4] c1[4] c0[5] c1[5]
  __m256i t1 = _mm256_unpackhi_epi32(c0, c1);  // c0[2] c1[2] c0[3] c1[3] | 6 7
  __m256i t2 = _mm256_unpacklo_epi32(c2, c3);
  __m256i t3 = _mm256_unpackhi_epi32(c2, c3);
  __m256i u0 = _mm256_unpacklo_epi64(t0, t2);  // ctr 0 | ctr 4
  __m256i u1 = _mm256_unpackhi_epi64(t0, t2);  // ctr 1 | ctr 5
  __m256i u2 = _mm256_unpacklo_epi64(t1, t3);  // ctr 2 | ctr 6
  __m256i u3 = _mm256_unpackhi_epi64(t1, t3);  // ctr 3 | ctr 7
  __m256i* o = reinterpret_cast<__m256i*>(out);
  _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
  _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
  _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
  _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
}

// bits[j] = random word of element (first + j) of stream `key`, j < n: counter (first+j)/4, lane (first+j)%4.
inline void philox_bits(uint64_t key, uint64_t first, long n, uint32_t* bits) {
  if (n <= 0) return;
  uint64_t c = first / 4;
  long skip = long(first % 4);
  long done = 0;
  alignas(32) uint32_t buf[32];
  while (done < n) {
    philox8(key, c, buf);
    long avail = 32 - skip;
    long take = n - done < avail ? n - done : avail;
    std::memcpy(bits + done, buf + skip, size_t(take) * 4);
    done += take;
    skip = 0;
    c += 8;
  }
}

// Dropout multipliers for n consecutive elements starting at element `first` of stream `key`:
// out[j] = scale if kept (uniform >= p), 0 if dropped.
inline void dropout_scales(uint64_t key, uint64_t first, long n, float p, float scale, float* out) {
  uint32_t* bits = reinterpret_cast<uint32_t*>(out);  // generated in place, then converted
  philox_bits(key, first, n, bits);
  const __m256 vp = _mm256_set1_ps(p), vs = _mm256_set1_ps(scale), unit = _mm256_set1_ps(1.0f / 16777216.0f);
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + i));
    __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 8)), unit);
    _mm256_storeu_ps(out + i, _mm256_and_ps(vs, _mm256_cmp_ps(u, vp, _CMP_GE_OQ)));
  }
  for (; i < n; i++) {
    uint32_t b;
    std::memcpy(&b, bits + i, 4);
    out[i] = u32_to_unit(b) < p ? 0.0f : scale;
  }
}

inline float dropout_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

}  // namespace loom::cpu::detail
