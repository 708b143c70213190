// Counter-based RNG (Philox4x32-10) and the bf16 / fp16 storage conversions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/rng.h"
#include "loom/kernels/cpu/simd.h"

namespace {

using loom::Philox4x32;

// Random123's philox4x32_10 with a full 128-bit counter, written independently of rng.h.
void philox_ref(const uint32_t ctr_in[4], const uint32_t key_in[2], uint32_t out[4]) {
  uint32_t c[4] = {ctr_in[0], ctr_in[1], ctr_in[2], ctr_in[3]};
  uint32_t k[2] = {key_in[0], key_in[1]};
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k[0] += 0x9E3779B9u;
      k[1] += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t(0xD2511F53u) * c[0], p1 = uint64_t(0xCD9E8D57u) * c[2];
    const uint32_t n[4] = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1],
                           uint32_t(p0)};
    std::memcpy(c, n, sizeof c);
  }
  std::memcpy(out, c, sizeof c);
}

TEST(RngPhilox, KnownAnswerZero) {
  uint32_t out[4];
  Philox4x32::generate(0, 0, out);
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
}

TEST(RngPhilox, KnownAnswersOfRandom123) {
  // The reference reproduces Random123's published vectors (kat_vectors, philox4x32 10)...
  struct Kat {
    uint32_t ctr[4], key[2], want[4];
  } kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint32_t out[4];
    philox_ref(k.ctr, k.key, out);
    for (int i = 0; i < 4; i++) EXPECT_EQ(out[i], k.want[i]) << "word " << i;
  }
  // ...and rng.h agrees with it wherever its 64-bit counter reaches (upper counter words zero).
  const uint64_t keys[] = {0, 1, 0xa4093822299f31d0ull, ~0ull};
  const uint64_t ctrs[] = {0, 1, 12345, 0xffffffffull, 0x100000000ull, ~0ull};
  for (uint64_t key : keys)
    for (uint64_t ctr : ctrs) {
      const uint32_t c[4] = {uint32_t(ctr), uint32_t(ctr >> 32), 0, 0};
      const uint32_t k[2] = {uint32_t(key), uint32_t(key >> 32)};
      uint32_t want[4], got[4];
      philox_ref(c, k, want);
      Philox4x32::generate(key, ctr, got);
      for (int i = 0; i < 4; i++) EXPECT_EQ(got[i], want[i]);
    }
}

TEST(RngPhilox, VectorisedStreamMatchesScalar) {
  // The kernels' 8-wide generator: element i of a stream is word i%4 of counter i/4, for any start
  // offset and across a carry into the counter's high word.
  const uint64_t key = 0x0123456789abcdefull;
  const uint64_t starts[] = {0, 1, 2, 3, 5, 31, 33, 4 * 0xfffffff0ull + 3};
  const long lengths[] = {1, 3, 4, 7, 32, 33, 100, 257};
  for (uint64_t first : starts)
    for (long n : lengths) {
      std::vector<uint32_t> got(static_cast<size_t>(n));
      loom::cpu::detail::philox_bits(key, first, n, got.data());
      for (long j = 0; j < n; j++) {
        uint32_t w[4];
        const uint64_t i = first + uint64_t(j);
        Philox4x32::generate(key, i / 4, w);
        ASSERT_EQ(got[size_t(j)], w[i % 4]) << "first " << first << " j " << j;
      }
    }
}

TEST(RngPhilox, SequentialGeneratorAndUniforms) {
  loom::Rng rng(42);
  for (uint64_t c = 0; c < 50; c++) {
    uint32_t w[4];
    Philox4x32::generate(42, c, w);
    for (int i = 0; i < 4; i++) EXPECT_EQ(rng.next_u32(), w[i]);
  }
  EXPECT_EQ(loom::u32_to_unit(0), 0.0f);
  EXPECT_LT(loom::u32_to_unit(0xffffffffu), 1.0f);
  EXPECT_EQ(loom::u32_to_unit(0x80000000u), 0.5f);
  // Mean and variance of many uniforms.
  loom::Rng r2(7);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    const double u = r2.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    s += u;
    s2 += u * u;
  }
  EXPECT_NEAR(s / n, 0.5, 0.005);
  EXPECT_NEAR(s2 / n - (s / n) * (s / n), 1.0 / 12, 0.002);
  EXPECT_NE(loom::stream_key(1, 2), loom::stream_key(1, 3));
  EXPECT_NE(loom::stream_key(1, 2), loom::stream_key(2, 2));
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Nearest-even rounding of a finite float to a sorted list of representable values (as doubles, each
// with its encoding); `overflow` is the magnitude from which the result is infinity.
struct Grid {
  std::vector<double> value;
  std::vector<uint16_t> code;
};

uint16_t round_ref(const Grid& g, float f, double overflow, uint16_t inf_code) {
  const double x = std::fabs(double(f));
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (x >= overflow) return sign | inf_code;
  auto it = std::lower_bound(g.value.begin(), g.value.end(), x);
  size_t hi = size_t(it - g.value.begin());
  if (hi < g.value.size() && g.value[hi] == x) return sign | g.code[hi];
  const size_t lo = hi - 1;  // x > 0 = value[0]
  if (hi == g.value.size()) return sign | g.code[lo];
  const double dl = x - g.value[lo], dh = g.value[hi] - x;
  if (dl < dh) return sign | g.code[lo];
  if (dh < dl) return sign | g.code[hi];
  return sign | ((g.code[lo] & 1) ? g.code[hi] : g.code[lo]);
}

Grid positive_grid(float (*decode)(uint16_t), uint16_t max_finite) {
  Grid g;
  for (uint32_t c = 0; c <= max_finite; c++) {
    g.value.push_back(double(decode(uint16_t(c))));
    g.code.push_back(uint16_t(c));
  }
  return g;
}

// Floats to test conversions on: random bit patterns plus every pattern near the format boundaries.
std::vector<float> probe_floats() {
  std::vector<float> v;
  loom::Rng rng(99);
  for (int i = 0; i < 200000; i++) {
    const float f = from_bits(rng.next_u32());
    if (std::isfinite(f)) v.push_back(f);
  }
  for (int i = 0; i < 200000; i++) {  // magnitudes in the fp16 range, 2^-27 .. 2^17
    const uint32_t e = 100 + rng.next_u32() % 44;
    v.push_back(from_bits((rng.next_u32() & 0x807fffffu) | (e << 23)));
  }
  const float specials[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 65536.0f, 5.9604645e-8f,
                            2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f, 6.1035156e-5f, 6.1035152e-5f,
                            3.3895314e38f, 3.4028235e38f, 1e-45f, 1.17549435e-38f};
  for (float f : specials) {
    v.push_back(f);
    v.push_back(-f);
  }
  // All 2^16 rounding remainders around a few bf16 / fp16 values (halfway cases included).
  for (uint32_t low = 0; low < 0x10000; low += 7) {
    v.push_back(from_bits(0x3f800000u | low));
    v.push_back(from_bits(0x3f810000u | low));
  }
  for (uint32_t low = 0; low < 0x2000; low++) {
    v.push_back(from_bits(0x3f800000u | low));            // around 1.0 for fp16 (13 dropped bits)
    v.push_back(from_bits(0x3f802000u | low));            // next fp16 value (odd)
    v.push_back(from_bits(0x387fe000u | low));            // just below the smallest normal half
    v.push_back(from_bits(0x33000000u | (low << 10)));    // near half of the smallest subnormal
  }
  return v;
}

TEST(DTypeBF16, KnownValuesAndRounding) {
  EXPECT_EQ(loom::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(loom::f32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(loom::f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(loom::f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(loom::f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(loom::f32_to_bf16(from_bits(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(loom::f32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(loom::f32_to_bf16(-INFINITY), 0xff80);
  EXPECT_EQ(loom::f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80);  // FLT_MAX rounds to infinity
  EXPECT_EQ(loom::f32_to_bf16(from_bits(0x00000001u)), 0x0000);  // smallest subnormal rounds to 0
  EXPECT_EQ(loom::f32_to_bf16(from_bits(0x00018000u)), 0x0002);  // subnormal tie to even
  const uint16_t qn = loom::f32_to_bf16(NAN);
  EXPECT_TRUE(std::isnan(loom::bf16_to_f32(qn)));
  const uint16_t sn = loom::f32_to_bf16(from_bits(0x7f800001u));  // signalling NaN with low payload only
  EXPECT_TRUE(std::isnan(loom::bf16_to_f32(sn)));
  EXPECT_TRUE(sn & 0x40);
  EXPECT_EQ(loom::bf16_to_f32(0x3f80), 1.0f);
}

TEST(DTypeBF16, RoundTripAndNearestEven) {
  for (uint32_t c = 0; c < 0x10000; c++) {
    const float f = loom::bf16_to_f32(uint16_t(c));
    if (std::isnan(f)) continue;
    ASSERT_EQ(loom::f32_to_bf16(f), c) << std::hex << c;
  }
  const Grid g = positive_grid(loom::bf16_to_f32, 0x7f7f);
  // Infinity from the midpoint between the largest bf16 and 2^128 (ties to even: 0x7f7f is odd).
  const double overflow = (double(loom::bf16_to_f32(0x7f7f)) + std::ldexp(1.0, 128)) / 2;
  for (float f : probe_floats()) ASSERT_EQ(loom::f32_to_bf16(f), round_ref(g, f, overflow, 0x7f80)) << f;
}

TEST(DTypeF16, KnownValuesAndRounding) {
  using loom::f16_to_f32;
  using loom::f32_to_f16;
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // tie between 65504 (odd) and 65536: infinity
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-INFINITY), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);       // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);       // tie to even: zero
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);       // 1.5 units: tie to even 2
  EXPECT_EQ(f32_to_f16(std::ldexp(5.0f, -25)), 0x0002);       // 2.5 units: tie to even 2
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);       // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.5f, -24)), 0x0400);    // rounds up into the normals
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(from_bits(0x3f801000u)), 0x3c00);      // tie, even stays
  EXPECT_EQ(f32_to_f16(from_bits(0x3f803000u)), 0x3c02);      // tie, odd rounds up
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(from_bits(0x7f800001u)))));
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7c00), INFINITY);
  EXPECT_EQ(f16_to_f32(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
}

TEST(DTypeF16, ExhaustiveRoundTripAndNearestEven) {
  int checked = 0;
  for (uint32_t c = 0; c < 0x10000; c++) {
    const float f = loom::f16_to_f32(uint16_t(c));
    if (((c >> 10) & 0x1f) == 0x1f && (c & 0x3ff)) {  // NaN patterns decode to NaN
      ASSERT_TRUE(std::isnan(f)) << std::hex << c;
      continue;
    }
    ASSERT_EQ(loom::f32_to_f16(f), c) << std::hex << c;
    checked++;
  }
  EXPECT_EQ(checked, 65536 - 2 * 1023);
  const Grid g = positive_grid(loom::f16_to_f32, 0x7bff);
  const double overflow = 65520.0;
  for (float f : probe_floats()) ASSERT_EQ(loom::f32_to_f16(f), round_ref(g, f, overflow, 0x7c00)) << f;
}

}  // namespace
