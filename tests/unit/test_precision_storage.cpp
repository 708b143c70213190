// Half-precision storage conversions (kernels/cpu/precision.h): to_f32, from_f32, accumulate_from_f32,
// sum_squares and has_inf_or_nan against the exact scalar IEEE converters of core/dtype.h, for F16, BF16
// and F32, at lengths that exercise the 8-wide vector body, the scalar tail, and the threaded chunked path
// (n > 65536, chunks of 16384).
#include <gtest/gtest.h>
#include <omp.h>

#include <cfloat>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/rng.h"
#include "loom/kernels/cpu/precision.h"
#include "test_kernels_util.h"

using namespace loom;

namespace {

// Lengths: empty, scalar tail only, exactly one vector, vector + tail, several vectors with and without a
// tail, one chunk plus a bit (single-threaded), and above the threading threshold with a partial last chunk.
const long kLengths[] = {0, 1, 7, 8, 9, 15, 1000, 1003, 16387, 70001};
constexpr long kGuard = 16;  // sentinel elements after the n valid ones: nothing may be written there

using test::bits_f32;
using test::f32_bits;
bool half_is_nan(uint16_t h, DType t) {
  return t == DType::F16 ? (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0 : (h & 0x7f80) == 0x7f80 && (h & 0x007f) != 0;
}
std::string hex(uint32_t u) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", u);
  return b;
}

// fp32 inputs chosen to hit every corner of the conversions.
std::vector<float> special_floats() {
  const float inf = std::numeric_limits<float>::infinity();
  const float h = std::ldexp(1.0f, -24);  // smallest fp16 subnormal
  std::vector<float> v = {
      0.0f, -0.0f, inf, -inf,
      bits_f32(0x7fc00000u), bits_f32(0xffc00000u),  // quiet NaN, negative quiet NaN
      bits_f32(0x7f800001u), bits_f32(0xff812345u),  // signalling NaNs (payload only in low bits)
      bits_f32(0x7fc12345u), bits_f32(0x7fffffffu),  // NaN payloads
      1.0f, -1.0f, 3.14159265f, -2.71828183f,
      // fp16 range limits
      65504.0f, -65504.0f, 65519.0f, -65519.0f,  // round down to the max finite
      65520.0f, -65520.0f,                        // exact tie above the max: rounds to even = inf
      65536.0f, 70000.0f, -1e5f, 1e30f, FLT_MAX, -FLT_MAX,
      // fp16 subnormals and their rounding
      h, -h, 1023.0f * h, -1023.0f * h, 1024.0f * h /* min normal 2^-14 */, 1023.5f * h /* tie -> 1024 h */,
      0.5f * h /* tie -> 0 */, -0.5f * h, std::nextafter(0.5f * h, 1.0f) /* -> h */, 1.5f * h /* tie -> 2h */,
      2.5f * h /* tie -> 2h */, 0.25f * h, 1e-8f, -1e-8f, 3e-7f,
      // fp32 subnormals
      bits_f32(0x00000001u), bits_f32(0x80400000u), std::numeric_limits<float>::min(),
      // fp16 ties in the normal range: 1 + 2^-11 (-> 1), 1 + 3 x 2^-11 (-> 1 + 2^-9), just above a tie
      1.0f + std::ldexp(1.0f, -11), 1.0f + 3.0f * std::ldexp(1.0f, -11), 1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -23),
      -(1.0f + std::ldexp(1.0f, -11)), 2048.0f + 1.0f /* tie between 2048 and 2050 */, 2048.0f + 3.0f,
      // bf16 ties: 1 + 2^-8 (-> 1), 1 + 3 x 2^-8 (-> 1 + 2^-6), just above and below a tie
      1.0f + std::ldexp(1.0f, -8), 1.0f + 3.0f * std::ldexp(1.0f, -8), bits_f32(0x3f808001u), bits_f32(0x3f807fffu),
      -(1.0f + std::ldexp(1.0f, -8)), bits_f32(0x7f7f8000u) /* bf16 tie at the top: rounds up to inf */,
      bits_f32(0x7f7f7fffu) /* rounds down to bf16's max finite */, bits_f32(0x00008000u) /* bf16 subnormal tie */,
      bits_f32(0x00018000u) /* bf16 subnormal tie, odd -> up */,
  };
  return v;
}

// Random fp32: wide-exponent normals (fp16 subnormal to overflow), raw bit patterns (every exponent,
// NaNs included), and exact fp16 / bf16 rounding ties.
float random_float(Rng& r) {
  switch (r.next_u32() % 4) {
    case 0: return r.normal() * std::ldexp(1.0f, int(r.next_u32() % 56) - 36);
    case 1: return bits_f32(r.next_u32());
    case 2: {  // midpoint of two adjacent finite fp16 values
      uint16_t a = uint16_t(r.next_u32() & 0xffff);
      if ((a & 0x7fff) >= 0x7bff) a &= 0x3fff;
      return 0.5f * (f16_to_f32(a) + f16_to_f32(uint16_t(a + 1)));
    }
    default: {  // midpoint of two adjacent bf16 values
      uint32_t a = r.next_u32() & 0xffff0000u;
      if ((a & 0x7f800000u) == 0x7f800000u) a &= 0xbfffffffu;
      return bits_f32(a | 0x8000u);
    }
  }
}

// n inputs: tiny lengths get every special at every position over the shifts; longer ones interleave
// specials with random values.
std::vector<float> make_inputs(long n, int shift, Rng& r) {
  const std::vector<float> sp = special_floats();
  std::vector<float> x(size_t(n + kGuard), 0.0f);
  for (long i = 0; i < n; i++) {
    if (n <= 16) x[size_t(i)] = sp[size_t(i + shift) % sp.size()];
    else x[size_t(i)] = i % 3 == 0 ? sp[size_t(i / 3 + shift) % sp.size()] : random_float(r);
  }
  return x;
}

int shifts_for(long n) { return n <= 16 ? int(special_floats().size()) : 2; }

const uint16_t kSentinel16 = 0xa5a5;
const uint32_t kSentinel32 = 0xdeadbeefu;

}  // namespace

// ---- from_f32 ----------------------------------------------------------------------------------------------

TEST(PrecisionStorage, FromF32HalfMatchesScalarReferenceBitwise) {
  Rng r(11);
  for (DType t : {DType::F16, DType::BF16}) {
    for (long n : kLengths) {
      for (int shift = 0; shift < shifts_for(n); shift++) {
        const std::vector<float> x = make_inputs(n, shift, r);
        std::vector<uint16_t> y(size_t(n + kGuard), kSentinel16);
        cpu::from_f32(x.data(), y.data(), t, n);
        for (long i = 0; i < n; i++) {
          const uint16_t want = test::half_bits(x[size_t(i)], t), got = y[size_t(i)];
          if (std::isnan(x[size_t(i)])) {
            ASSERT_TRUE(half_is_nan(got, t)) << dtype_name(t) << " n=" << n << " i=" << i << " in=" << hex(f32_bits(x[size_t(i)]))
                                             << " got " << got;
          } else {
            ASSERT_EQ(got, want) << dtype_name(t) << " n=" << n << " i=" << i << " in=" << hex(f32_bits(x[size_t(i)]))
                                 << " (" << x[size_t(i)] << ")";
          }
        }
        for (long i = n; i < n + kGuard; i++) ASSERT_EQ(y[size_t(i)], kSentinel16) << "wrote past the end, n=" << n;
      }
    }
  }
}

TEST(PrecisionStorage, FromF32KnownRoundings) {
  // Independent of the scalar reference: the IEEE answers written out.
  const float in[9] = {65519.0f, 65520.0f, 70000.0f, -65520.0f, 1.0f + std::ldexp(1.0f, -11),
                       1.0f + 3.0f * std::ldexp(1.0f, -11), std::ldexp(1.0f, -25), std::ldexp(1.5f, -24), 2049.0f};
  const uint16_t f16_want[9] = {0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x3c00, 0x3c02, 0x0000, 0x0002, 0x6800};
  std::vector<uint16_t> out(9);
  cpu::from_f32(in, out.data(), DType::F16, 9);  // 8 in the vector body, 1 in the tail
  for (int i = 0; i < 9; i++) EXPECT_EQ(out[size_t(i)], f16_want[i]) << i;
  cpu::from_f32(in + 1, out.data(), DType::F16, 8);
  for (int i = 0; i < 8; i++) EXPECT_EQ(out[size_t(i)], f16_want[i + 1]) << "shifted " << i;

  const float bin[9] = {1.0f + std::ldexp(1.0f, -8), 1.0f + 3.0f * std::ldexp(1.0f, -8), bits_f32(0x3f808001u),
                        bits_f32(0x3f807fffu), bits_f32(0x7f7f8000u), bits_f32(0x7f7f7fffu), -0.0f,
                        std::numeric_limits<float>::infinity(), bits_f32(0x00018000u)};
  const uint16_t bf16_want[9] = {0x3f80, 0x3f82, 0x3f81, 0x3f80, 0x7f80, 0x7f7f, 0x8000, 0x7f80, 0x0002};
  cpu::from_f32(bin, out.data(), DType::BF16, 9);
  for (int i = 0; i < 9; i++) EXPECT_EQ(out[size_t(i)], bf16_want[i]) << i;
  cpu::from_f32(bin + 1, out.data(), DType::BF16, 8);
  for (int i = 0; i < 8; i++) EXPECT_EQ(out[size_t(i)], bf16_want[i + 1]) << "shifted " << i;
}

TEST(PrecisionStorage, FromF32F32IsABitwiseCopy) {
  Rng r(12);
  for (long n : kLengths) {
    const std::vector<float> x = make_inputs(n, 1, r);
    std::vector<float> y(size_t(n + kGuard), bits_f32(kSentinel32));
    cpu::from_f32(x.data(), y.data(), DType::F32, n);
    for (long i = 0; i < n; i++) ASSERT_EQ(f32_bits(y[size_t(i)]), f32_bits(x[size_t(i)])) << "n=" << n << " i=" << i;
    for (long i = n; i < n + kGuard; i++) ASSERT_EQ(f32_bits(y[size_t(i)]), kSentinel32) << "n=" << n;
  }
}

// ---- to_f32 ------------------------------------------------------------------------------------------------

TEST(PrecisionStorage, ToF32HalfMatchesScalarReferenceOnEveryBitPattern) {
  // All 65536 patterns (subnormals, infinities, NaNs), at every length; 70001 wraps and threads.
  for (DType t : {DType::F16, DType::BF16}) {
    for (long n : kLengths) {
      for (int shift : {0, 3, 65533}) {
        std::vector<uint16_t> x(size_t(n + kGuard));
        for (long i = 0; i < n; i++) x[size_t(i)] = uint16_t((i * 7 + shift) & 0xffff);
        if (n <= 16)  // put the special patterns into short arrays too
          for (long i = 0; i < n; i++) {
            const uint16_t sp[8] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x7c00, 0xfc00, 0x7e00, 0x7f80};
            x[size_t(i)] = sp[size_t(i + shift) % 8];
          }
        std::vector<float> y(size_t(n + kGuard), bits_f32(kSentinel32));
        cpu::to_f32(x.data(), t, y.data(), n);
        for (long i = 0; i < n; i++) {
          const float want = test::half_value(x[size_t(i)], t), got = y[size_t(i)];
          if (std::isnan(want)) ASSERT_TRUE(std::isnan(got)) << dtype_name(t) << " n=" << n << " in=" << x[size_t(i)];
          else ASSERT_EQ(f32_bits(got), f32_bits(want)) << dtype_name(t) << " n=" << n << " i=" << i << " in=" << x[size_t(i)];
        }
        for (long i = n; i < n + kGuard; i++) ASSERT_EQ(f32_bits(y[size_t(i)]), kSentinel32) << "n=" << n;
      }
    }
    // Exhaustive, in one call.
    std::vector<uint16_t> all(65536);
    for (size_t i = 0; i < all.size(); i++) all[i] = uint16_t(i);
    std::vector<float> y(all.size());
    cpu::to_f32(all.data(), t, y.data(), long(all.size()));
    for (size_t i = 0; i < all.size(); i++) {
      const float want = test::half_value(all[i], t);
      if (std::isnan(want)) ASSERT_TRUE(std::isnan(y[i])) << dtype_name(t) << " " << i;
      else ASSERT_EQ(f32_bits(y[i]), f32_bits(want)) << dtype_name(t) << " " << i;
    }
  }
}

// Widening in place (ZeRO-3 gathers half weights into the fp32 buffer that will hold them) equals the
// out-of-place conversion, for every length, and leaves what follows the n floats alone.
TEST(PrecisionStorage, ToF32InPlaceEqualsOutOfPlace) {
  Rng r(21);
  for (DType t : {DType::F16, DType::BF16}) {
    for (long n : kLengths) {
      std::vector<uint16_t> half(static_cast<size_t>(n));
      const std::vector<float> x = make_inputs(n, 3, r);
      cpu::from_f32(x.data(), half.data(), t, n);
      std::vector<float> want(static_cast<size_t>(n));
      cpu::to_f32(half.data(), t, want.data(), n);
      std::vector<float> buf(size_t(n) + 4, 7.0f);
      if (n > 0) std::memcpy(buf.data(), half.data(), half.size() * 2);
      cpu::to_f32_in_place(buf.data(), t, n);
      for (long i = 0; i < n; i++)
        ASSERT_EQ(f32_bits(buf[size_t(i)]), f32_bits(want[size_t(i)])) << dtype_name(t) << " n=" << n << " i=" << i;
      for (long i = n; i < n + 4; i++) ASSERT_EQ(buf[size_t(i)], 7.0f);
    }
  }
}

TEST(PrecisionStorage, ToF32F32IsABitwiseCopy) {
  Rng r(13);
  for (long n : kLengths) {
    const std::vector<float> x = make_inputs(n, 2, r);
    std::vector<float> y(size_t(n + kGuard), bits_f32(kSentinel32));
    cpu::to_f32(x.data(), DType::F32, y.data(), n);
    for (long i = 0; i < n; i++) ASSERT_EQ(f32_bits(y[size_t(i)]), f32_bits(x[size_t(i)])) << "n=" << n << " i=" << i;
    for (long i = n; i < n + kGuard; i++) ASSERT_EQ(f32_bits(y[size_t(i)]), kSentinel32) << "n=" << n;
  }
}

TEST(PrecisionStorage, HalfRoundTripIsIdentityOnFiniteValues) {
  // from_f32(to_f32(h)) == h for every finite half pattern (the two directions are exact inverses).
  for (DType t : {DType::F16, DType::BF16}) {
    std::vector<uint16_t> h;
    for (uint32_t i = 0; i < 65536; i++)
      if (!std::isnan(test::half_value(uint16_t(i), t))) h.push_back(uint16_t(i));
    std::vector<float> f(h.size());
    std::vector<uint16_t> back(h.size());
    cpu::to_f32(h.data(), t, f.data(), long(h.size()));
    cpu::from_f32(f.data(), back.data(), t, long(h.size()));
    for (size_t i = 0; i < h.size(); i++) ASSERT_EQ(back[i], h[i]) << dtype_name(t);
  }
}

TEST(PrecisionStorage, ConversionsRejectNonFloatTypes) {
  float f[1] = {1.0f};
  int32_t i[1] = {0};
  EXPECT_THROW(cpu::to_f32(i, DType::I32, f, 1), std::logic_error);
  EXPECT_THROW(cpu::from_f32(f, i, DType::I32, 1), std::logic_error);
  EXPECT_THROW(cpu::accumulate_from_f32(i, DType::U16, f, 1, 1.0f), std::logic_error);
  EXPECT_THROW(cpu::sum_squares(i, DType::I64, 1), std::logic_error);
  EXPECT_THROW(cpu::has_inf_or_nan(i, DType::I32, 1), std::logic_error);
}

// ---- accumulate_from_f32 -----------------------------------------------------------------------------------
// precision.cpp writes dst + scale * src as a separate multiply and add (_mm256_mul_ps then _mm256_add_ps in
// the vector body, `load1(dst, t, i) + scale * src[i]` in the scalar tail), then rounds to the destination
// type. GCC's default -ffp-contract=fast (gnu++20) may still fuse the scalar tail into an FMA, and does so in
// the LOOM_SANITIZE build (vfmadd132ss in accumulate_from_f32's tail), so the kernel's answer for an element
// can depend on the build and on whether the element falls in the vector body or the tail. The test
// therefore accepts, per element, either round(dst + round_f32(scale * src)) or round(fma(scale, src, dst)),
// and nothing else; the two agree whenever scale * src is exact in fp32 (scale = +-1, and the powers of two
// ParamStore uses barring underflow/overflow).

namespace {
float mul_then_add(float d, float scale, float s) {
  volatile float prod = scale * s;  // rounded to fp32 on its own: no contraction possible
  const float p = prod;
  volatile float sum = d + p;
  return sum;
}
float fused(float d, float scale, float s) { return std::fma(scale, s, d); }
}  // namespace

TEST(PrecisionStorage, AccumulateMatchesMultiplyAddThenRound) {
  Rng r(14);
  const float scales[] = {1.0f, -1.0f, 0.5f, -0.37f, 3.3f, 1.0f / 3.0f};
  for (DType t : {DType::F16, DType::BF16, DType::F32}) {
    for (long n : kLengths) {
      for (float scale : scales) {
        // Destination: random values in the storage type (some inf / NaN among them); source: fp32.
        std::vector<float> src = make_inputs(n, 5, r);
        std::vector<float> dst0(static_cast<size_t>(n));
        for (long i = 0; i < n; i++) dst0[size_t(i)] = i % 5 == 1 ? src[size_t((i * 7) % n)] : r.normal() * 8.0f;
        for (long i = 0; i < n; i++)
          if (i % 2 == 0) src[size_t(i)] = r.normal() * std::ldexp(1.0f, int(r.next_u32() % 20) - 10);
        // The destination as stored (fp32 or 16-bit bits in a uint32 slot), then as the kernel sees it.
        std::vector<uint32_t> before(static_cast<size_t>(n));
        for (long i = 0; i < n; i++)
          before[size_t(i)] = t == DType::F32 ? f32_bits(dst0[size_t(i)]) : test::half_bits(dst0[size_t(i)], t);
        auto load = [&](uint32_t raw) { return t == DType::F32 ? bits_f32(raw) : test::half_value(uint16_t(raw), t); };
        auto store = [&](float x) -> uint32_t { return t == DType::F32 ? f32_bits(x) : test::half_bits(x, t); };
        auto is_nan = [&](uint32_t raw) { return t == DType::F32 ? std::isnan(bits_f32(raw)) : half_is_nan(uint16_t(raw), t); };

        std::vector<uint32_t> got(static_cast<size_t>(n));
        if (t == DType::F32) {
          std::vector<float> dst(size_t(n + kGuard), bits_f32(kSentinel32));
          for (long i = 0; i < n; i++) dst[size_t(i)] = bits_f32(before[size_t(i)]);
          cpu::accumulate_from_f32(dst.data(), t, src.data(), n, scale);
          for (long i = 0; i < n; i++) got[size_t(i)] = f32_bits(dst[size_t(i)]);
          for (long i = n; i < n + kGuard; i++) ASSERT_EQ(f32_bits(dst[size_t(i)]), kSentinel32) << "n=" << n;
        } else {
          std::vector<uint16_t> dst(size_t(n + kGuard), kSentinel16);
          for (long i = 0; i < n; i++) dst[size_t(i)] = uint16_t(before[size_t(i)]);
          cpu::accumulate_from_f32(dst.data(), t, src.data(), n, scale);
          for (long i = 0; i < n; i++) got[size_t(i)] = dst[size_t(i)];
          for (long i = n; i < n + kGuard; i++) ASSERT_EQ(dst[size_t(i)], kSentinel16) << "n=" << n;
        }
        for (long i = 0; i < n; i++) {
          const float d = load(before[size_t(i)]), x = src[size_t(i)];
          const float sep = mul_then_add(d, scale, x), fus = fused(d, scale, x);
          const uint32_t g = got[size_t(i)];
          const bool ok_sep = std::isnan(sep) ? is_nan(g) : g == store(sep);
          // The project builds with -ffp-contract=off: the product is rounded on its own everywhere (a
          // fused multiply-add would give `fus` for some elements, depending on the build).
          ASSERT_TRUE(ok_sep) << dtype_name(t) << " n=" << n << " i=" << i << " scale=" << scale << " dst=" << d
                              << " src=" << x << ": got " << hex(g) << ", want " << hex(store(sep))
                              << " (fused would be " << hex(store(fus)) << ")";
        }
      }
    }
  }
}

TEST(PrecisionStorage, AccumulateRoundsOnceAfterTheFp32Sum) {
  // 2048 + 1 is exact in fp32 and a tie in fp16 (2048 and 2050): round to even gives 2048; adding 1 again
  // from the stored 2048 stays at 2048 (accumulation in half storage loses the increments), while
  // 2048 + 3 -> 2052 (tie, even).
  std::vector<uint16_t> d(9, f32_to_f16(2048.0f));
  std::vector<float> s(9, 1.0f);
  s[8] = 3.0f;
  cpu::accumulate_from_f32(d.data(), DType::F16, s.data(), 9, 1.0f);
  for (int i = 0; i < 8; i++) EXPECT_EQ(f16_to_f32(d[size_t(i)]), 2048.0f) << i;
  EXPECT_EQ(f16_to_f32(d[8]), 2052.0f);
  // Overflow to inf in fp16, and scale applied before the sum.
  std::vector<uint16_t> e(9, f32_to_f16(65504.0f));
  std::vector<float> big(9, 8.0f);
  cpu::accumulate_from_f32(e.data(), DType::F16, big.data(), 9, 2.0f);  // 65504 + 16 = 65520: tie -> inf
  for (int i = 0; i < 9; i++) EXPECT_EQ(e[size_t(i)], 0x7c00) << i;
  std::vector<uint16_t> b(9, f32_to_bf16(1.0f));
  std::vector<float> tiny(9, std::ldexp(1.0f, -9));
  cpu::accumulate_from_f32(b.data(), DType::BF16, tiny.data(), 9, 2.0f);  // 1 + 2^-8: tie -> 1
  for (int i = 0; i < 9; i++) EXPECT_EQ(b[size_t(i)], 0x3f80) << i;
  cpu::accumulate_from_f32(b.data(), DType::BF16, tiny.data(), 9, 3.0f);  // 1 + 1.5 x 2^-8 -> 1 + 2^-7
  for (int i = 0; i < 9; i++) EXPECT_EQ(b[size_t(i)], 0x3f81) << i;
}

// ---- sum_squares -------------------------------------------------------------------------------------------

namespace {
// Finite values of the type, spread over many magnitudes (zeros, subnormals, the max finite included).
std::vector<uint32_t> finite_data(DType t, long n, uint64_t seed, bool extremes = true) {
  Rng r(seed);
  std::vector<uint32_t> raw(static_cast<size_t>(n));  // holds uint16 or fp32 bits
  for (long i = 0; i < n; i++) {
    const float v = r.normal() * std::ldexp(1.0f, int(r.next_u32() % 24) - 12);
    raw[size_t(i)] = t == DType::F32 ? f32_bits(v) : test::half_bits(v, t);
  }
  auto put = [&](long i, float v) {
    if (i < n) raw[size_t(i)] = t == DType::F32 ? f32_bits(v) : test::half_bits(v, t);
  };
  const float maxv = t == DType::F16 ? 65504.0f : t == DType::BF16 ? bf16_to_f32(0x7f7f) : FLT_MAX;
  if (extremes) put(0, maxv);
  if (extremes) put(3, -maxv);
  put(4, 0.0f);
  put(5, -0.0f);
  put(6, t == DType::F16 ? std::ldexp(1.0f, -24) : std::numeric_limits<float>::denorm_min());
  if (extremes) put(n - 1, -maxv);
  return raw;
}

// Packs the bits into the storage layout the kernels read.
struct Buffer {
  std::vector<float> f;
  std::vector<uint16_t> h;
  Buffer(DType t, const std::vector<uint32_t>& raw) {
    if (t == DType::F32) {
      f.resize(raw.size());
      for (size_t i = 0; i < raw.size(); i++) f[i] = bits_f32(raw[i]);
    } else {
      h.resize(raw.size());
      for (size_t i = 0; i < raw.size(); i++) h[i] = uint16_t(raw[i]);
    }
  }
  const void* data() const { return f.empty() ? static_cast<const void*>(h.data()) : f.data(); }
};

double value_of(DType t, uint32_t raw) { return t == DType::F32 ? double(bits_f32(raw)) : double(test::half_value(uint16_t(raw), t)); }
}  // namespace

TEST(PrecisionStorage, SumSquaresMatchesDoubleReferenceAndIsThreadCountIndependent) {
  for (DType t : {DType::F16, DType::BF16, DType::F32}) {
    for (long n : {1L, 7L, 8L, 9L, 1000L, 1003L, 16387L, 70001L, 200003L})
    for (bool extremes : {false, true}) {
      // Without extremes every element matters at 1e-12; with them the F32 data includes FLT_MAX, whose
      // square overflows fp32 but not double: the sum must be formed in double.
      const std::vector<uint32_t> raw = finite_data(t, n, uint64_t(100 + n), extremes);
      const Buffer buf(t, raw);
      long double want = 0.0L;
      for (long i = 0; i < n; i++) {
        const long double v = value_of(t, raw[size_t(i)]);
        want += v * v;
      }
      double one, two;
      {
        test::ScopedThreads threads(1);
        one = cpu::sum_squares(buf.data(), t, n);
      }
      {
        test::ScopedThreads threads(2);
        ASSERT_EQ(omp_get_max_threads(), 2);
        two = cpu::sum_squares(buf.data(), t, n);
      }
      ASSERT_TRUE(std::isfinite(one)) << dtype_name(t) << " n=" << n;
      EXPECT_LE(std::fabs(one - double(want)), 1e-12 * double(want)) << dtype_name(t) << " n=" << n << " extremes=" << extremes << " got " << one
                                                                    << " want " << double(want);
      uint64_t b1, b2;
      std::memcpy(&b1, &one, 8);
      std::memcpy(&b2, &two, 8);
      EXPECT_EQ(b1, b2) << dtype_name(t) << " n=" << n << ": 1 thread " << one << " vs 2 threads " << two;
    }
    EXPECT_EQ(cpu::sum_squares(nullptr, t, 0), 0.0) << dtype_name(t);
  }
}

TEST(PrecisionStorage, SumSquaresExactOnSmallIntegers) {
  // Squares of small integers sum exactly in double: an exact, order-independent answer.
  for (DType t : {DType::F16, DType::BF16, DType::F32}) {
    for (long n : {9L, 70001L}) {
      std::vector<uint32_t> raw(static_cast<size_t>(n));
      double want = 0.0;
      for (long i = 0; i < n; i++) {
        const float v = float(int(i % 31) - 15);
        raw[size_t(i)] = t == DType::F32 ? f32_bits(v) : test::half_bits(v, t);
        want += double(v) * double(v);
      }
      const Buffer buf(t, raw);
      EXPECT_EQ(cpu::sum_squares(buf.data(), t, n), want) << dtype_name(t) << " n=" << n;
    }
  }
}

// ---- has_inf_or_nan ----------------------------------------------------------------------------------------

TEST(PrecisionStorage, HasInfOrNanFalseForFiniteDataIncludingMaxFinite) {
  for (DType t : {DType::F16, DType::BF16, DType::F32}) {
    EXPECT_FALSE(cpu::has_inf_or_nan(nullptr, t, 0)) << dtype_name(t);
    for (long n : kLengths) {
      if (n == 0) continue;
      std::vector<uint32_t> raw = finite_data(t, n, uint64_t(7 + n));
      // Every element the max finite value (either sign) in a second pass.
      for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
          for (long i = 0; i < n; i++)
            raw[size_t(i)] = t == DType::F16 ? (i % 2 ? 0xfbffu : 0x7bffu)
                             : t == DType::BF16 ? (i % 2 ? 0xff7fu : 0x7f7fu)
                                                : (i % 2 ? 0xff7fffffu : 0x7f7fffffu);
        const Buffer buf(t, raw);
        EXPECT_FALSE(cpu::has_inf_or_nan(buf.data(), t, n)) << dtype_name(t) << " n=" << n << " pass " << pass;
      }
    }
  }
  const uint16_t max16 = 0x7bff;
  EXPECT_EQ(f16_to_f32(max16), 65504.0f);
}

TEST(PrecisionStorage, HasInfOrNanFindsASingleBadValueAnywhere) {
  for (DType t : {DType::F16, DType::BF16, DType::F32}) {
    // +inf, -inf, quiet NaN, signalling NaN with a one-bit payload, negative NaN.
    const std::vector<uint32_t> bad = t == DType::F16    ? std::vector<uint32_t>{0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe00}
                                      : t == DType::BF16 ? std::vector<uint32_t>{0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffc0}
                                                         : std::vector<uint32_t>{0x7f800000u, 0xff800000u, 0x7fc00000u,
                                                                                 0x7f800001u, 0xffc00000u};
    for (long n : kLengths) {
      if (n == 0) continue;
      std::vector<uint32_t> raw = finite_data(t, n, uint64_t(31 + n));
      for (long pos : {0L, n / 2, n - 1}) {
        for (uint32_t b : bad) {
          const uint32_t saved = raw[size_t(pos)];
          raw[size_t(pos)] = b;
          const Buffer buf(t, raw);
          EXPECT_TRUE(cpu::has_inf_or_nan(buf.data(), t, n)) << dtype_name(t) << " n=" << n << " pos=" << pos << " bad=" << hex(b);
          // Not visible when the bad element lies just past the range asked about.
          if (pos == n - 1 && n > 1) {
            EXPECT_FALSE(cpu::has_inf_or_nan(buf.data(), t, n - 1)) << dtype_name(t) << " n=" << n;
          }
          raw[size_t(pos)] = saved;
        }
      }
    }
  }
}
