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
