#include "loom/kernels/cpu/precision.h"

#include "loom/kernels/cpu/adamw.h"
#include "loom/kernels/cpu/convert8.h"
#include "loom/kernels/cpu/parallel.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

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

namespace loom::cpu {

namespace {

constexpr long kChunk = 16384;  // elements per task; also the fixed summation chunk of sum_squares

// Runs f(i0, i1) over [0, n) in fixed chunks, threaded when n is large.
template <class F>
void chunked(long n, F&& f) {
  const long chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1 && n > (1 << 16))
  for (long c = 0; c < chunks; c++) f(c * kChunk, std::min(n, (c + 1) * kChunk));
}

void require_float_type(DType t) {
  if (t != DType::F32 && t != DType::F16 && t != DType::BF16) throw std::logic_error("not a floating storage type");
}

}  // namespace

void to_f32(const void* src, DType t, float* dst, long n) {
  require_float_type(t);
  chunked(n, [&](long i0, long i1) {
    long i = i0;
    for (; i + 8 <= i1; i += 8) _mm256_storeu_ps(dst + i, load8(src, t, i));
    for (; i < i1; i++) dst[i] = load1(src, t, i);
  });
}

void to_f32_in_place(void* data, DType t, long n) {
  require_float_type(t);
  if (t == DType::F32 || n <= 0) return;
  // From the end: float i occupies the bytes of halves 2i and 2i+1, which (for i >= 1) lie above i and
  // are already converted; block 0 reads its halves before storing. Sequential by construction.
  float* out = static_cast<float*>(data);
  long i = n;
  for (; i % 8; i--) out[i - 1] = load1(data, t, i - 1);
  for (i -= 8; i >= 0; i -= 8) _mm256_storeu_ps(out + i, load8(data, t, i));
}

void from_f32_in_place(float* data, DType t, long n) {
  require_float_type(t);
  if (t == DType::F32 || n <= 0) return;
  // From the start: half i occupies bytes [2i, 2i + 2), below float i's [4i, 4i + 4); each block of 8 is
  // loaded before it is stored over, and stores never reach floats not yet loaded. Sequential by construction.
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(data + i);
    store8(data, t, i, v);
  }
  for (; i < n; i++) {
    const float x = data[i];
    store1(data, t, i, x);
  }
}

void from_f32(const float* src, void* dst, DType t, long n) {
  require_float_type(t);
  chunked(n, [&](long i0, long i1) {
    long i = i0;
    for (; i + 8 <= i1; i += 8) store8(dst, t, i, _mm256_loadu_ps(src + i));
    for (; i < i1; i++) store1(dst, t, i, src[i]);
  });
}

void round_and_store(float* x, void* dst, DType t, long n) {
  require_float_type(t);
  chunked(n, [&](long i0, long i1) {
    long i = i0;
    for (; i + 8 <= i1; i += 8) {
      store8(dst, t, i, _mm256_loadu_ps(x + i));
      _mm256_storeu_ps(x + i, load8(dst, t, i));
    }
    for (; i < i1; i++) {
      store1(dst, t, i, x[i]);
      x[i] = load1(dst, t, i);
    }
  });
}

void accumulate_from_f32(void* dst, DType t, const float* src, long n, float scale) {
  require_float_type(t);
  chunked(n, [&](long i0, long i1) {
    const __m256 s = _mm256_set1_ps(scale);
    long i = i0;
    for (; i + 8 <= i1; i += 8)
      store8(dst, t, i, _mm256_add_ps(load8(dst, t, i), _mm256_mul_ps(s, _mm256_loadu_ps(src + i))));
    for (; i < i1; i++) store1(dst, t, i, load1(dst, t, i) + scale * src[i]);
  });
}

double sum_squares(const void* x, DType t, long n) {
  require_float_type(t);
  if (n <= 0) return 0.0;
  if (t == DType::F32) return sum_squares(static_cast<const float*>(x), n);  // the vectorised fp32 kernel, same chunks
  const long chunks = (n + kChunk - 1) / kChunk;
  double* part = detail::scratch_doubles(size_t(chunks));  // per-chunk sums added in order: thread-count independent
  chunked(n, [&](long i0, long i1) {
    double s = 0.0;
    for (long i = i0; i < i1; i++) {
      const double v = load1(x, t, i);
      s += v * v;
    }
    part[i0 / kChunk] = s;
  });
  double total = 0.0;
  for (long c = 0; c < chunks; c++) total += part[c];
  return total;
}

bool has_inf_or_nan(const void* x, DType t, long n) {
  require_float_type(t);
  // All exponent bits set: inf or NaN, in every format.
  const uint32_t mask32 = 0x7f800000u;
  const uint16_t mask16 = t == DType::F16 ? 0x7c00 : 0x7f80;
  int found = 0;
  chunked(n, [&](long i0, long i1) {
    int f = 0;
    if (t == DType::F32) {
      const uint32_t* u = static_cast<const uint32_t*>(x);
      for (long i = i0; i < i1; i++) f |= (u[i] & mask32) == mask32;
    } else {
      const uint16_t* u = static_cast<const uint16_t*>(x);
      for (long i = i0; i < i1; i++) f |= (u[i] & mask16) == mask16;
    }
    if (f) {
#pragma omp atomic write
      found = 1;
    }
  });
  return found != 0;
}

int64_t count_zeros(const void* x, DType t, long n) {
  require_float_type(t);
  // Zero is every bit but the sign clear, in every format; integer counts add up in any order.
  int64_t total = 0;
  chunked(n, [&](long i0, long i1) {
    int64_t z = 0;
    if (t == DType::F32) {
      const uint32_t* u = static_cast<const uint32_t*>(x);
      for (long i = i0; i < i1; i++) z += (u[i] & 0x7fffffffu) == 0;
    } else {
      const uint16_t* u = static_cast<const uint16_t*>(x);
      for (long i = i0; i < i1; i++) z += (u[i] & 0x7fffu) == 0;
    }
#pragma omp atomic
    total += z;
  });
  return total;
}

}  // namespace loom::cpu
