// Half-precision rounding agrees with the scalar reference conversions, including overflow.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/precision.h"

using namespace loom;

TEST(Precision, RoundingMatchesScalarConversions) {
  Rng r(3);
  std::vector<float> x(1003);
  for (auto& v : x) v = r.normal() * std::pow(2.0f, float(int(r.next_u32() % 40) - 20));
  x[5] = 70000.f;   // beyond fp16's 65504
  x[6] = -1e-8f;    // fp16 subnormal range
  x[7] = 65519.f;   // rounds to 65504 in fp16
  for (DType t : {DType::F16, DType::BF16}) {
    std::vector<float> y = x;
    cpu::round_to_dtype(y.data(), long(y.size()), t);
    for (size_t i = 0; i < x.size(); i++) {
      const float want = t == DType::F16 ? f16_to_f32(f32_to_f16(x[i])) : bf16_to_f32(f32_to_bf16(x[i]));
      ASSERT_EQ(std::memcmp(&y[i], &want, 4), 0) << i << " " << x[i];
    }
  }
  std::vector<float> z = {70000.f, 65519.f};
  cpu::round_to_dtype(z.data(), 2, DType::F16);
  EXPECT_TRUE(std::isinf(z[0]));
  EXPECT_EQ(z[1], 65504.f);
}

// round_and_store keeps exactly what from_f32 stores and leaves x equal to round_to_dtype's result (F32: a copy).
TEST(Precision, RoundAndStoreKeepsTheRoundedValues) {
  Rng r(5);
  std::vector<float> x(70013);  // threaded chunks plus a scalar tail
  for (auto& v : x) v = r.normal() * std::pow(2.0f, float(int(r.next_u32() % 40) - 20));
  x[5] = 70000.f;
  for (DType t : {DType::F16, DType::BF16, DType::F32}) {
    std::vector<float> y = x, rounded = x;
    cpu::round_to_dtype(rounded.data(), long(rounded.size()), t);
    std::vector<uint32_t> want(x.size()), got(x.size());  // room for either element size
    cpu::from_f32(x.data(), want.data(), t, long(x.size()));
    cpu::round_and_store(y.data(), got.data(), t, long(y.size()));
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), x.size() * dtype_size(t))) << dtype_name(t);
    EXPECT_EQ(0, std::memcmp(y.data(), rounded.data(), x.size() * 4)) << dtype_name(t);
  }
}

// from_f32_in_place leaves the first n halves equal to what from_f32 writes, for every length's tail.
TEST(Precision, FromF32InPlaceEqualsOutOfPlace) {
  Rng r(8);
  for (long n : {1L, 7L, 8L, 9L, 1000L, 50304L}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = r.normal() * 3.f;
    for (DType t : {DType::BF16, DType::F16}) {
      std::vector<uint16_t> want(static_cast<size_t>(n));
      cpu::from_f32(x.data(), want.data(), t, n);
      std::vector<float> y = x;
      cpu::from_f32_in_place(y.data(), t, n);
      ASSERT_EQ(0, std::memcmp(y.data(), want.data(), size_t(n) * 2)) << n << " " << dtype_name(t);
    }
  }
}
