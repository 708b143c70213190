#include "loom/kernels/cpu/precision.h"

#include <immintrin.h>

#include <cstring>

namespace loom::cpu {

namespace {

void round_bf16(float* x, long n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (long i = 0; i < n; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

void round_fp16(float* x, long n) {
  const long blocks = n / 8;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (long b = 0; b < blocks; b++) {
    // F16C: round to nearest even, overflow to inf, subnormals kept: IEEE half exactly.
    __m256 v = _mm256_loadu_ps(x + 8 * b);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(x + 8 * b, _mm256_cvtph_ps(h));
  }
  for (long i = blocks * 8; i < n; i++) x[i] = f16_to_f32(f32_to_f16(x[i]));
}

}  // namespace

void round_to_dtype(float* x, long n, DType dtype) {
  if (dtype == DType::BF16) round_bf16(x, n);
  if (dtype == DType::F16) round_fp16(x, n);
}

}  // namespace loom::cpu
