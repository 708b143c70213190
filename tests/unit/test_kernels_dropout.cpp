// Dropout from counter-based masks: statistics, exact masks, forward/backward agreement.
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/dropout.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

// The mask by definition: element i is dropped iff u32_to_unit(word i%4 of Philox(key, i/4)) < p.
bool kept(uint64_t key, uint64_t i, float p) {
  uint32_t w[4];
  loom::Philox4x32::generate(key, i / 4, w);
  return !(loom::u32_to_unit(w[i % 4]) < p);
}

TEST(KernelDropout, KeptFractionAndExactMask) {
  const long n = 1000000;
  const uint64_t key = loom::stream_key(1234, 5);
  for (float p : {0.1f, 0.5f}) {
    std::vector<float> x(n, 1.0f);
    loom::cpu::dropout_forward(x.data(), n, p, key);
    long kept_count = 0;
    const float scale = 1.0f / (1.0f - p);
    for (long i = 0; i < n; i++) {
      if (x[size_t(i)] != 0.0f) {
        kept_count++;
        ASSERT_EQ(x[size_t(i)], scale);
      }
    }
    const double frac = double(kept_count) / n;
    EXPECT_NEAR(frac, 1.0 - p, 0.01 * (1.0 - p)) << "p " << p;
    for (long i = 0; i < n; i += 997) ASSERT_EQ(x[size_t(i)] != 0.0f, kept(key, uint64_t(i), p)) << i;
    // The backward applies the same mask.
    std::vector<float> g(n, 2.0f);
    loom::cpu::dropout_backward(g.data(), n, p, key);
    for (long i = 0; i < n; i++) ASSERT_EQ(g[size_t(i)] != 0.0f, x[size_t(i)] != 0.0f) << i;
  }
}

TEST(KernelDropout, ZeroProbabilityIsIdentity) {
  auto x = random_floats(1001, 1);
  auto y = x;
  loom::cpu::dropout_forward(y.data(), long(y.size()), 0.0f, 7);
  EXPECT_TRUE(loom::test::bitwise_equal(x, y));
  loom::cpu::dropout_backward(y.data(), long(y.size()), 0.0f, 7);
  EXPECT_TRUE(loom::test::bitwise_equal(x, y));
}

TEST(KernelDropout, BiasDropoutAddForwardBackward) {
  const uint64_t key = 0xfeedULL;
  for (float p : {0.0f, 0.2f}) {
    for (int C : {5, 64, 67}) {
      const int N = 41;
      auto x = random_floats(size_t(N) * C, 2), bias = random_floats(C, 3), res = random_floats(x.size(), 4);
      const double scale = 1.0 / (1.0 - double(p));
      for (bool with_bias : {true, false}) {
        std::vector<double> want(x.size());
        for (size_t i = 0; i < x.size(); i++) {
          const double v = double(x[i] + (with_bias ? bias[i % C] : 0.0f));
          want[i] = res[i] + (kept(key, i, p) ? v * scale : 0.0);
        }
        std::vector<float> out(x.size());
        loom::cpu::bias_dropout_add_forward(x.data(), with_bias ? bias.data() : nullptr, res.data(), out.data(), N,
                                            C, p, key);
        EXPECT_TRUE(all_close(out, want, 1e-6)) << "p " << p << " C " << C;
        std::vector<float> inplace = res;  // out aliases residual
        loom::cpu::bias_dropout_add_forward(x.data(), with_bias ? bias.data() : nullptr, inplace.data(),
                                            inplace.data(), N, C, p, key);
        EXPECT_TRUE(loom::test::bitwise_equal(out, inplace));
      }
      auto dout = random_floats(x.size(), 5), db = random_floats(C, 6);
      std::vector<double> wdx(x.size()), wdb(db.begin(), db.end());
      for (size_t i = 0; i < x.size(); i++) {
        wdx[i] = kept(key, i, p) ? dout[i] * scale : 0.0;
        wdb[i % C] += wdx[i];
      }
      std::vector<float> dx(x.size());
      loom::cpu::bias_dropout_add_backward(dout.data(), dx.data(), db.data(), N, C, p, key);
      EXPECT_TRUE(all_close(dx, wdx, 1e-6));
      EXPECT_TRUE(all_close(db, wdb, 1e-6));
      loom::cpu::bias_dropout_add_backward(dout.data(), dout.data(), nullptr, N, C, p, key);  // in place
      EXPECT_TRUE(loom::test::bitwise_equal(dout, dx));
    }
  }
}

TEST(KernelDropout, ShardsUseTheirStreamOffset) {
  // A shard of a tensor, given the index of its first element, gets the same mask as the whole.
  const uint64_t key = 31337;
  const int N = 24, C = 40, r0 = 7;
  auto x = random_floats(size_t(N) * C, 8), res = random_floats(x.size(), 9), bias = random_floats(C, 10);
  std::vector<float> full(x.size()), shard(size_t(N - r0) * C);
  loom::cpu::bias_dropout_add_forward(x.data(), bias.data(), res.data(), full.data(), N, C, 0.3f, key);
  loom::cpu::bias_dropout_add_forward(x.data() + r0 * C, bias.data(), res.data() + r0 * C, shard.data(), N - r0, C,
                                      0.3f, key, uint64_t(r0) * C);
  EXPECT_TRUE(loom::test::bitwise_equal(shard, std::vector<float>(full.begin() + r0 * C, full.end())));
  std::vector<float> dfull(x.size()), dshard(shard.size());
  loom::cpu::bias_dropout_add_backward(x.data(), dfull.data(), nullptr, N, C, 0.3f, key);
  loom::cpu::bias_dropout_add_backward(x.data() + r0 * C, dshard.data(), nullptr, N - r0, C, 0.3f, key,
                                       uint64_t(r0) * C);
  EXPECT_TRUE(loom::test::bitwise_equal(dshard, std::vector<float>(dfull.begin() + r0 * C, dfull.end())));
  for (long off : {1L, 3L, 4L, 4099L}) {
    auto a = random_floats(10000, 11);
    std::vector<float> b(a.begin() + off, a.end());
    loom::cpu::dropout_forward(a.data(), long(a.size()), 0.25f, key);
    loom::cpu::dropout_forward(b.data(), long(b.size()), 0.25f, key, uint64_t(off));
    EXPECT_TRUE(loom::test::bitwise_equal(b, std::vector<float>(a.begin() + off, a.end()))) << off;
    loom::cpu::dropout_backward(a.data(), long(a.size()), 0.25f, key);
    loom::cpu::dropout_backward(b.data(), long(b.size()), 0.25f, key, uint64_t(off));
    EXPECT_TRUE(loom::test::bitwise_equal(b, std::vector<float>(a.begin() + off, a.end()))) << off;
  }
}

TEST(KernelDropout, DeterministicAcrossThreadCounts) {
  const int N = 700, C = 96;
  auto dout = random_floats(size_t(N) * C, 7);
  std::vector<float> r[2][2];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    std::vector<float> dx(dout.size()), db(C, 0.0f);
    loom::cpu::bias_dropout_add_backward(dout.data(), dx.data(), db.data(), N, C, 0.3f, 99);
    r[t][0] = dx;
    r[t][1] = db;
  }
  EXPECT_TRUE(loom::test::bitwise_equal(r[0][0], r[1][0]));
  EXPECT_TRUE(loom::test::bitwise_equal(r[0][1], r[1][1]));
}

}  // namespace
