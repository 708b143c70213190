// Megatron's grad scalers (megatron/core/optimizer/grad_scaler.py), the fp16 start of reference log 002,
// and the inf/NaN check.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "loom/core/error.h"
#include "loom/optim/loss_scaler.h"

namespace {

using loom::ConstantGradScaler;
using loom::DynamicGradScaler;

// Reference log 002 (--fp16, initial 2^32, window 1000, hysteresis 2, min 1): iterations 1..17 overflow
// and are skipped; the logged `loss scale:` (read after the step's update) is, iteration by iteration:
TEST(LossScaler, ReferenceLog002SkippedIterations) {
  const double logged[24] = {4294967296.0, 2147483648.0, 1073741824.0, 536870912.0, 268435456.0, 134217728.0,
                             67108864.0,   33554432.0,   16777216.0,   8388608.0,   4194304.0,   2097152.0,
                             1048576.0,    524288.0,     262144.0,     131072.0,    65536.0,     65536.0,
                             65536.0,      65536.0,      65536.0,      65536.0,     65536.0,     65536.0};
  DynamicGradScaler s(4294967296.0, 1.0, 2.0, 0.5, 1000, 2);
  int skipped = 0;
  for (int it = 1; it <= 24; it++) {
    const bool found_inf = it <= 17;
    s.update(found_inf);
    skipped += found_inf;
    EXPECT_EQ(double(s.scale()), logged[it - 1]) << "iteration " << it;
  }
  EXPECT_EQ(skipped, 17);
  // After 7 clean steps: growth tracker 7; the hysteresis tracker was not restored (no growth yet).
  EXPECT_EQ(s.growth_tracker(), 7);
  EXPECT_EQ(s.hysteresis_tracker(), 2 - 17);
}

TEST(LossScaler, HysteresisConsumedBeforeBackoff) {
  DynamicGradScaler s(1024.0, 1.0, 2.0, 0.5, 100, 3);
  s.update(true);
  EXPECT_EQ(s.scale(), 1024.0f);
  s.update(true);
  EXPECT_EQ(s.scale(), 1024.0f);
  s.update(true);  // third overflow in a row: tracker reaches 0
  EXPECT_EQ(s.scale(), 512.0f);
  s.update(true);  // tracker stays <= 0: every further overflow backs off
  EXPECT_EQ(s.scale(), 256.0f);
  EXPECT_EQ(s.hysteresis_tracker(), -1);
}

TEST(LossScaler, CleanStepsDoNotRestoreHysteresis) {
  // Megatron resets the hysteresis tracker only when the scale grows, not on every clean step.
  DynamicGradScaler s(1024.0, 1.0, 2.0, 0.5, 10, 2);
  s.update(true);  // tracker 1, no backoff
  EXPECT_EQ(s.scale(), 1024.0f);
  for (int i = 0; i < 5; i++) s.update(false);
  EXPECT_EQ(s.hysteresis_tracker(), 1);
  EXPECT_EQ(s.growth_tracker(), 5);
  s.update(true);  // a single overflow now backs off at once
  EXPECT_EQ(s.scale(), 512.0f);
  EXPECT_EQ(s.growth_tracker(), 0);
}

TEST(LossScaler, GrowthAfterWindowResetsTrackers) {
  DynamicGradScaler s(256.0, 1.0, 2.0, 0.5, 4, 2);
  s.update(true);
  s.update(true);
  EXPECT_EQ(s.scale(), 128.0f);
  EXPECT_EQ(s.hysteresis_tracker(), 0);
  for (int i = 0; i < 3; i++) s.update(false);
  EXPECT_EQ(s.scale(), 128.0f);
  s.update(false);  // 4th clean step in a row: grow, trackers reset
  EXPECT_EQ(s.scale(), 256.0f);
  EXPECT_EQ(s.growth_tracker(), 0);
  EXPECT_EQ(s.hysteresis_tracker(), 2);
  s.update(true);  // hysteresis is back: one overflow is absorbed
  EXPECT_EQ(s.scale(), 256.0f);
  // An overflow inside the window restarts it.
  for (int i = 0; i < 3; i++) s.update(false);
  s.update(true);
  EXPECT_EQ(s.scale(), 128.0f);
  for (int i = 0; i < 3; i++) s.update(false);
  EXPECT_EQ(s.scale(), 128.0f);
  s.update(false);
  EXPECT_EQ(s.scale(), 256.0f);
}

TEST(LossScaler, FloorAtMinimum) {
  DynamicGradScaler s(8.0, 2.0, 2.0, 0.5, 1000, 1);
  std::vector<float> history;
  for (int i = 0; i < 5; i++) {
    s.update(true);
    history.push_back(s.scale());
  }
  EXPECT_EQ(history, (std::vector<float>{4.0f, 2.0f, 2.0f, 2.0f, 2.0f}));
  // A minimum that is not a power of two: max(scale x 0.5, min).
  DynamicGradScaler t(100.0, 30.0, 2.0, 0.5, 1000, 1);
  t.update(true);
  EXPECT_EQ(t.scale(), 50.0f);
  t.update(true);
  EXPECT_EQ(t.scale(), 30.0f);
}

TEST(LossScaler, SimulatedOverflowSequenceMatchesRules) {
  // A long pseudo-random overflow pattern against an independent statement of the rules.
  DynamicGradScaler s(65536.0, 1.0, 2.0, 0.5, 7, 3);
  double scale = 65536.0;
  int growth = 0, hyst = 3;
  uint32_t state = 12345;
  for (int it = 0; it < 5000; it++) {
    state = state * 1664525u + 1013904223u;
    const bool inf = (state >> 24) < 40;  // about 16% overflow
    s.update(inf);
    if (inf) {
      growth = 0;
      if (--hyst <= 0) scale = std::max(scale / 2, 1.0);
    } else if (++growth == 7) {
      growth = 0;
      hyst = 3;
      scale *= 2;
    }
    ASSERT_EQ(double(s.scale()), scale) << "iteration " << it;
    ASSERT_EQ(s.growth_tracker(), growth);
    ASSERT_EQ(s.hysteresis_tracker(), hyst);
  }
}

TEST(LossScaler, StateRoundTripAndInverse) {
  DynamicGradScaler a(4294967296.0, 1.0, 2.0, 0.5, 1000, 2);
  for (int i = 0; i < 3; i++) a.update(true);
  for (int i = 0; i < 5; i++) a.update(false);
  const loom::GradScalerState st = a.state();
  EXPECT_EQ(st.scale, 1073741824.0f);
  EXPECT_EQ(st.growth_tracker, 5);
  EXPECT_EQ(st.hysteresis_tracker, -1);
  DynamicGradScaler b(4294967296.0, 1.0, 2.0, 0.5, 1000, 2);
  b.load_state(st);
  for (int i = 0; i < 20; i++) {
    const bool inf = i % 3 == 0;
    a.update(inf);
    b.update(inf);
    EXPECT_EQ(a.scale(), b.scale());
    EXPECT_EQ(a.growth_tracker(), b.growth_tracker());
    EXPECT_EQ(a.hysteresis_tracker(), b.hysteresis_tracker());
  }
  b.set_scale(1000.0f);
  b.set_growth_tracker(999);
  b.set_hysteresis_tracker(2);
  b.update(false);
  EXPECT_EQ(b.scale(), 2000.0f);
  EXPECT_EQ(b.inv_scale(), float(1.0 / 2000.0));
  EXPECT_EQ(b.hysteresis_tracker(), 2);
}

TEST(LossScaler, ConstantNeverChanges) {
  ConstantGradScaler c(4096.0);
  for (int i = 0; i < 10; i++) c.update(i % 2 == 0);
  EXPECT_EQ(c.scale(), 4096.0f);
  EXPECT_EQ(c.inv_scale(), 1.0f / 4096.0f);
  c.load_state({1.0f, 3, 4});  // Megatron ignores a checkpoint's state for a constant scaler
  EXPECT_EQ(c.scale(), 4096.0f);
  EXPECT_FALSE(c.dynamic());
}

TEST(LossScaler, MegatronSelection) {
  loom::GradScalerOptions o;
  EXPECT_EQ(loom::make_grad_scaler(o), nullptr);  // fp32
  o.bf16 = true;
  EXPECT_EQ(loom::make_grad_scaler(o), nullptr);  // bf16 without --loss-scale
  o.loss_scale = 128.0;
  auto c = loom::make_grad_scaler(o);
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->dynamic());
  EXPECT_EQ(c->scale(), 128.0f);
  o.bf16 = false;
  o.fp16 = true;
  o.loss_scale.reset();
  auto d = loom::make_grad_scaler(o);
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->dynamic());
  EXPECT_EQ(d->scale(), 4294967296.0f);
  o.bf16 = true;
  EXPECT_THROW(loom::make_grad_scaler(o), loom::UserError);
}

TEST(LossScaler, RejectsMegatronAssertedRanges) {
  EXPECT_THROW(DynamicGradScaler(0.0, 1.0, 2.0, 0.5, 1000, 2), loom::UserError);
  EXPECT_THROW(DynamicGradScaler(1.0, 2.0, 2.0, 0.5, 1000, 2), loom::UserError);
  EXPECT_THROW(DynamicGradScaler(4.0, 1.0, 1.0, 0.5, 1000, 2), loom::UserError);
  EXPECT_THROW(DynamicGradScaler(4.0, 1.0, 2.0, 1.0, 1000, 2), loom::UserError);
  EXPECT_THROW(DynamicGradScaler(4.0, 1.0, 2.0, 0.5, 0, 2), loom::UserError);
  EXPECT_THROW(DynamicGradScaler(4.0, 1.0, 2.0, 0.5, 1000, 0), loom::UserError);
  EXPECT_THROW(ConstantGradScaler(-1.0), loom::UserError);
}

TEST(LossScaler, HasInfOrNanEveryPosition) {
  const float specials[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()};
  for (long n : {0L, 1L, 7L, 31L, 32L, 33L, 1000L, 65536L, 65537L, 300001L}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (long i = 0; i < n; i++) x[size_t(i)] = float((i % 17) - 8) * 1e30f;  // large but finite
    if (n > 0) x[size_t(n - 1)] = std::numeric_limits<float>::max();
    EXPECT_FALSE(loom::has_inf_or_nan(x.data(), n)) << n;
    if (n == 0) continue;
    for (long pos : {0L, n / 2, n - 1}) {
      for (float sp : specials) {
        const float keep = x[size_t(pos)];
        x[size_t(pos)] = sp;
        EXPECT_TRUE(loom::has_inf_or_nan(x.data(), n)) << "n " << n << " pos " << pos << " value " << sp;
        x[size_t(pos)] = keep;
      }
    }
  }
}

TEST(LossScaler, UnscaleAndCheck) {
  std::vector<float> g(100000);
  for (size_t i = 0; i < g.size(); i++) g[i] = float(int(i % 11) - 5) * 65536.0f;
  EXPECT_FALSE(loom::unscale_and_check(g.data(), long(g.size()), 1.0f / 65536.0f));
  for (size_t i = 0; i < g.size(); i++) ASSERT_EQ(g[i], float(int(i % 11) - 5)) << i;
  g[777] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(loom::unscale_and_check(g.data(), long(g.size()), 0.5f));
  EXPECT_EQ(g[0], -2.5f);
}

}  // namespace
