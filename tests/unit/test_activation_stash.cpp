// ActivationStash: per-slot entries keep what was put (half entries rounded, fp32 ones exact), slots are
// independent, and sizes are checked.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "loom/core/rng.h"
#include "loom/layers/activation_stash.h"

using namespace loom;

TEST(ActivationStash, SlotsKeepRoundedActivationsAndExactStatistics) {
  ActivationStash stash;
  const int a = stash.add(1001, DType::BF16), b = stash.add(37, DType::F32), c = stash.add(500, DType::F16);
  stash.allocate(2);
  // Each entry 64-byte aligned: 2002 -> 2048, 148 -> 192, 1000 -> 1024 bytes.
  EXPECT_EQ(stash.bytes_per_slot(), size_t(2048 + 192 + 1024));
  Rng r(11);
  auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = r.normal();
    return v;
  };
  std::vector<std::vector<float>> put[2], original[2];
  for (int s = 0; s < 2; s++) {
    for (int64_t n : {1001, 37, 500}) original[s].push_back(random(size_t(n)));
    put[s] = original[s];
    stash.put(s, a, put[s][0].data(), 1001);
    stash.put(s, b, put[s][1].data(), 37);
    stash.put(s, c, put[s][2].data(), 400);  // a smaller micro-batch uses a prefix
  }
  for (int s = 0; s < 2; s++) {
    // put rounded x in place; fp32 statistics untouched.
    for (size_t i = 0; i < 1001; i++) ASSERT_EQ(put[s][0][i], bf16_to_f32(f32_to_bf16(original[s][0][i])));
    EXPECT_EQ(put[s][1], original[s][1]);
    for (size_t i = 0; i < 400; i++) ASSERT_EQ(put[s][2][i], f16_to_f32(f32_to_f16(original[s][2][i])));
    EXPECT_EQ(put[s][2][450], original[s][2][450]);
    std::vector<float> back(1001, -1.f);
    stash.get(s, a, back.data(), 1001);
    EXPECT_EQ(0, std::memcmp(back.data(), put[s][0].data(), 1001 * 4)) << "slot " << s;
    stash.get(s, b, back.data(), 37);
    EXPECT_EQ(0, std::memcmp(back.data(), original[s][1].data(), 37 * 4));
    stash.get(s, c, back.data(), 400);
    EXPECT_EQ(0, std::memcmp(back.data(), put[s][2].data(), 400 * 4));
  }
  std::vector<float> big(2000);
  EXPECT_THROW(stash.put(0, a, big.data(), 1002), std::logic_error);
  EXPECT_THROW(stash.add(1, DType::F32), std::logic_error);
}
