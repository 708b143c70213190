// AdamW step, sum of squares and scaling.
#include <cstring>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/kernels/cpu/adamw.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

TEST(KernelAdamW, ThreeStepsMatchDoubleReference) {
  for (long n : {1L, 13L, 1003L, 40000L}) {
    auto p = random_floats(size_t(n), 1);
    std::vector<float> m(size_t(n), 0.0f), v(size_t(n), 0.0f);
    std::vector<double> rp(p.begin(), p.end()), rm(size_t(n), 0.0), rv(size_t(n), 0.0);
    loom::cpu::AdamWConfig cfg{3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0};
    for (int step = 1; step <= 3; step++) {
      auto g = random_floats(size_t(n), 10 + step, -0.5f, 0.5f);
      cfg.step = step;
      loom::cpu::adamw_step(p.data(), g.data(), m.data(), v.data(), n, cfg);
      const double b1 = cfg.beta1, b2 = cfg.beta2;
      const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
      for (long i = 0; i < n; i++) {
        rm[size_t(i)] = b1 * rm[size_t(i)] + (1 - b1) * g[size_t(i)];
        rv[size_t(i)] = b2 * rv[size_t(i)] + (1 - b2) * double(g[size_t(i)]) * g[size_t(i)];
        rp[size_t(i)] -= double(cfg.lr) * ((rm[size_t(i)] / bc1) / (std::sqrt(rv[size_t(i)] / bc2) + double(cfg.eps)) +
                                          double(cfg.weight_decay) * rp[size_t(i)]);
      }
      EXPECT_TRUE(all_close(m, rm, 1e-5)) << "n " << n << " step " << step;
      EXPECT_TRUE(all_close(v, rv, 1e-5));
      EXPECT_TRUE(all_close(p, rp, 1e-6));
    }
  }
}

// The fused store of the rounded weights: the same update, and bit for bit each updated weight rounded by
// the scalar converters of core/dtype.h (vector body and scalar tail), NaN included.
TEST(KernelAdamW, RoundedCopyEqualsScalarRoundingOfTheUpdate) {
  for (loom::DType t : {loom::DType::BF16, loom::DType::F16})
    for (long n : {5L, 1003L, 40000L}) {
      auto p = random_floats(size_t(n), 1), q = p;
      auto g = random_floats(size_t(n), 2, -0.5f, 0.5f);
      g[3] = std::nanf("");
      std::vector<float> m(size_t(n), 0.0f), v(size_t(n), 0.0f), m2 = m, v2 = v;
      std::vector<uint16_t> half(size_t(n), 0);
      const loom::cpu::AdamWConfig cfg{3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1};
      loom::cpu::adamw_step(p.data(), g.data(), m.data(), v.data(), n, cfg);
      loom::cpu::adamw_step(q.data(), g.data(), m2.data(), v2.data(), n, cfg, half.data(), t);
      ASSERT_EQ(0, std::memcmp(p.data(), q.data(), sizeof(float) * size_t(n)));
      for (long i = 0; i < n; i++) {
        const uint16_t want = t == loom::DType::BF16 ? loom::f32_to_bf16(p[size_t(i)]) : loom::f32_to_f16(p[size_t(i)]);
        ASSERT_EQ(half[size_t(i)], want) << "element " << i << " of " << n;
      }
    }
}

// Reading the gradient as (g x unscale) x clip equals scaling it in place twice first, bit for bit.
TEST(KernelAdamW, FusedUnscaleAndClipEqualScalingInPlace) {
  for (long n : {7L, 40000L}) {
    auto p = random_floats(size_t(n), 1), q = p;
    auto g = random_floats(size_t(n), 2, -300.f, 300.f), gs = g;
    std::vector<float> m(size_t(n), 0.1f), v(size_t(n), 0.2f), m2 = m, v2 = v;
    loom::cpu::AdamWConfig c{3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 2};
    loom::cpu::scale_inplace(gs.data(), n, 1.0f / 1024.0f / 3.0f);
    loom::cpu::scale_inplace(gs.data(), n, 0.3711f);
    loom::cpu::adamw_step(p.data(), gs.data(), m.data(), v.data(), n, c);
    c.grad_unscale = 1.0f / 1024.0f / 3.0f, c.grad_clip = 0.3711f;
    loom::cpu::adamw_step(q.data(), g.data(), m2.data(), v2.data(), n, c);
    ASSERT_EQ(0, std::memcmp(p.data(), q.data(), sizeof(float) * size_t(n)));
    ASSERT_EQ(0, std::memcmp(m.data(), m2.data(), sizeof(float) * size_t(n)));
    ASSERT_EQ(0, std::memcmp(v.data(), v2.data(), sizeof(float) * size_t(n)));
  }
}

TEST(KernelAdamW, SumSquaresAndScale) {
  for (long n : {0L, 1L, 7L, 16384L, 100001L}) {
    auto x = random_floats(size_t(n), 20, -2, 2);
    double want = 0;
    for (float f : x) want += double(f) * f;
    EXPECT_NEAR(loom::cpu::sum_squares(x.data(), n), want, 1e-12 * want + 1e-300);
    auto y = x;
    loom::cpu::scale_inplace(y.data(), n, 0.25f);
    for (long i = 0; i < n; i++) ASSERT_EQ(y[size_t(i)], x[size_t(i)] * 0.25f);
  }
}

TEST(KernelAdamW, SumSquaresDeterministicAcrossThreadCounts) {
  auto x = random_floats(300007, 21, -3, 3);
  double r[2];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    r[t] = loom::cpu::sum_squares(x.data(), long(x.size()));
  }
  EXPECT_EQ(r[0], r[1]);
}

}  // namespace
