#pragma once
// Eight floats at a time to and from a storage type (fp32, IEEE half, bf16), with the scalar forms for
// tails: the exact conversions of core/dtype.h (round to nearest even; bf16 NaNs kept quiet), shared by the
// precision kernels and the optimizer's fused store of rounded weights, so both write the same bits.
#include <immintrin.h>

#include <cstdint>

#include "loom/core/dtype.h"

namespace loom::cpu {

inline __m256 load8(const void* src, DType t, long i) {
  if (t == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(src) + i);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(src) + i));
  if (t == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline float load1(const void* src, DType t, long i) {
  if (t == DType::F32) return static_cast<const float*>(src)[i];
  const uint16_t h = static_cast<const uint16_t*>(src)[i];
  return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// fp32 -> bf16 bits, round to nearest even, NaN kept quiet (as f32_to_bf16).
inline __m128i to_bf16x8(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  r = _mm256_blendv_epi8(r, quiet, _mm256_castps_si256(nan));
  r = _mm256_and_si256(r, _mm256_set1_epi32(0xffff));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
  return _mm256_castsi256_si128(packed);
}

inline void store8(void* dst, DType t, long i, __m256 x) {
  if (t == DType::F32) return _mm256_storeu_ps(static_cast<float*>(dst) + i, x);
  const __m128i h = t == DType::F16 ? _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT) : to_bf16x8(x);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(dst) + i), h);
}

inline void store1(void* dst, DType t, long i, float x) {
  if (t == DType::F32) static_cast<float*>(dst)[i] = x;
  else static_cast<uint16_t*>(dst)[i] = t == DType::F16 ? f32_to_f16(x) : f32_to_bf16(x);
}

}  // namespace loom::cpu
