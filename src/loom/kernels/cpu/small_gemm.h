#pragma once
// Internal: a register-blocked single-threaded GEMM for the small, cache-resident products inside the
// attention kernel (64-row blocks, head size 64), where a BLAS call spends much of its time packing.
// Row-major C (M x N) = alpha * A (M x K) @ B (K x N) + beta * C, no transposes (callers transpose
// small operands with transpose() below). Each C element is one fused multiply-add chain over k in
// order, so results depend only on the operands, never on threads.
#include <immintrin.h>

#include <algorithm>

namespace loom::cpu::detail {

namespace sg {

inline __m256i lane_mask(int r) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx);
}

inline void store_c(float* c, __m256 acc, float alpha, float beta, bool part, __m256i mask) {
  __m256 r = _mm256_mul_ps(_mm256_set1_ps(alpha), acc);
  if (part) {
    if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(c, mask), r);
    _mm256_maskstore_ps(c, mask, r);
  } else {
    if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c), r);
    _mm256_storeu_ps(c, r);
  }
}

// An MR x (8*NV) tile (MR <= 6, NV <= 2); with kMask the last vector of 8 columns is partial (mask).
// The accumulators are named variables (not an array) so that they stay in registers.
template <int MR, int NV, bool kMask>
inline void tile(int K, float alpha, const float* A, long lda, const float* B, long ldb, float beta, float* C,
                 long ldc, __m256i mask) {
  static_assert(MR >= 1 && MR <= 6 && NV >= 1 && NV <= 2);
  const __m256 z = _mm256_setzero_ps();
  __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
  const float* a0 = A;
  const float* a1 = A + lda;
  const float* a2 = A + 2 * lda;
  const float* a3 = A + 3 * lda;
  const float* a4 = A + 4 * lda;
  const float* a5 = A + 5 * lda;
  for (int k = 0; k < K; k++) {
    const float* b = B + long(k) * ldb;
    __m256 b0, b1 = z;
    if constexpr (NV == 1) {
      b0 = kMask ? _mm256_maskload_ps(b, mask) : _mm256_loadu_ps(b);
    } else {
      b0 = _mm256_loadu_ps(b);
      b1 = kMask ? _mm256_maskload_ps(b + 8, mask) : _mm256_loadu_ps(b + 8);
    }
#define LOOM_SG_ROW(i)                                      \
  if constexpr (MR > i) {                                   \
    const __m256 a = _mm256_broadcast_ss(a##i + k);         \
    c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);              \
    if constexpr (NV > 1) c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1); \
  }
    LOOM_SG_ROW(0)
    LOOM_SG_ROW(1)
    LOOM_SG_ROW(2)
    LOOM_SG_ROW(3)
    LOOM_SG_ROW(4)
    LOOM_SG_ROW(5)
#undef LOOM_SG_ROW
  }
#define LOOM_SG_STORE(i)                                                          \
  if constexpr (MR > i) {                                                         \
    float* c = C + long(i) * ldc;                                                 \
    if constexpr (NV == 1) {                                                      \
      store_c(c, c##i##0, alpha, beta, kMask, mask);                              \
    } else {                                                                      \
      store_c(c, c##i##0, alpha, beta, false, mask);                              \
      store_c(c + 8, c##i##1, alpha, beta, kMask, mask);                          \
    }                                                                             \
  }
  LOOM_SG_STORE(0)
  LOOM_SG_STORE(1)
  LOOM_SG_STORE(2)
  LOOM_SG_STORE(3)
  LOOM_SG_STORE(4)
  LOOM_SG_STORE(5)
#undef LOOM_SG_STORE
}

template <int MR>
inline void row_panel(int N, int K, float alpha, const float* A, long lda, const float* B, long ldb, float beta,
                      float* C, long ldc) {
  int j = 0;
  for (; j + 16 <= N; j += 16) tile<MR, 2, false>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, __m256i());
  const int r = N - j;
  if (r > 8) {
    tile<MR, 2, true>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, lane_mask(r - 8));
  } else if (r == 8) {
    tile<MR, 1, false>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, __m256i());
  } else if (r > 0) {
    tile<MR, 1, true>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, lane_mask(r));
  }
}

}  // namespace sg

inline void sgemm_small(int M, int N, int K, float alpha, const float* A, long lda, const float* B, long ldb,
                        float beta, float* C, long ldc) {
  if (M <= 0 || N <= 0) return;
  constexpr int MR = 6;
  int i = 0;
  for (; i + MR <= M; i += MR) sg::row_panel<MR>(N, K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc);
  const float* a = A + long(i) * lda;
  float* c = C + long(i) * ldc;
  switch (M - i) {
    case 5: sg::row_panel<5>(N, K, alpha, a, lda, B, ldb, beta, c, ldc); break;
    case 4: sg::row_panel<4>(N, K, alpha, a, lda, B, ldb, beta, c, ldc); break;
    case 3: sg::row_panel<3>(N, K, alpha, a, lda, B, ldb, beta, c, ldc); break;
    case 2: sg::row_panel<2>(N, K, alpha, a, lda, B, ldb, beta, c, ldc); break;
    case 1: sg::row_panel<1>(N, K, alpha, a, lda, B, ldb, beta, c, ldc); break;
    default: break;
  }
}

// dst (cols x rows, row stride ldd) = transpose of src (rows x cols, row stride lds).
inline void transpose(const float* src, long lds, int rows, int cols, float* dst, long ldd) {
  int r = 0;
  for (; r + 8 <= rows; r += 8) {
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
      __m256 x[8];
      for (int k = 0; k < 8; k++) x[k] = _mm256_loadu_ps(src + (r + k) * lds + c);
      const __m256 t0 = _mm256_unpacklo_ps(x[0], x[1]), t1 = _mm256_unpackhi_ps(x[0], x[1]);
      const __m256 t2 = _mm256_unpacklo_ps(x[2], x[3]), t3 = _mm256_unpackhi_ps(x[2], x[3]);
      const __m256 t4 = _mm256_unpacklo_ps(x[4], x[5]), t5 = _mm256_unpackhi_ps(x[4], x[5]);
      const __m256 t6 = _mm256_unpacklo_ps(x[6], x[7]), t7 = _mm256_unpackhi_ps(x[6], x[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      _mm256_storeu_ps(dst + (c + 0) * ldd + r, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(dst + (c + 1) * ldd + r, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(dst + (c + 2) * ldd + r, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(dst + (c + 3) * ldd + r, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(dst + (c + 4) * ldd + r, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(dst + (c + 5) * ldd + r, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(dst + (c + 6) * ldd + r, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(dst + (c + 7) * ldd + r, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; c < cols; c++)
      for (int k = 0; k < 8; k++) dst[c * ldd + r + k] = src[(r + k) * lds + c];
  }
  for (; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace loom::cpu::detail
