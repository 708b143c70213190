// Megatron's OptimizerParamScheduler, checked against values worked out from its formulas and the
// reference log 002 (lr 1.5e-4, warmup fraction 0.01 of 320 iterations x 64 samples).
#include <gtest/gtest.h>

#include <cmath>

#include "loom/optim/lr_scheduler.h"

using loom::LrSchedule;
using loom::LrScheduler;

TEST(LrScheduler, ReferenceLog002WarmupValues) {
  LrSchedule s;
  s.max_lr = 1.5e-4;
  s.min_lr = 1e-5;
  s.style = "cosine";
  s.decay_steps = 320 * 64;
  s.warmup_steps = 0.01 * double(s.decay_steps);  // 204.8 samples
  LrScheduler sched(s);
  EXPECT_EQ(sched.lr(), 0.0);  // iteration 1 of the log: learning rate 0.000E+00
  sched.step(64);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3E", sched.lr());
  EXPECT_STREQ(buf, "4.687E-05");  // iteration 18 of the log (the first that stepped)
  sched.step(64);
  sched.step(64);
  std::snprintf(buf, sizeof buf, "%.3E", sched.lr());
  EXPECT_STREQ(buf, "1.406E-04");  // iteration 20 of the log
}

TEST(LrScheduler, CosineAndLinearShapes) {
  LrSchedule s;
  s.max_lr = 1.0;
  s.min_lr = 0.1;
  s.warmup_steps = 10;
  s.decay_steps = 110;
  s.style = "cosine";
  LrScheduler c(s);
  EXPECT_DOUBLE_EQ(c.lr_at(5), 0.5);
  EXPECT_DOUBLE_EQ(c.lr_at(10), 1.0);
  EXPECT_NEAR(c.lr_at(60), 0.1 + 0.9 * 0.5, 1e-12);  // half way: cos(pi/2) = 0
  EXPECT_NEAR(c.lr_at(110), 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(c.lr_at(111), 0.1);
  s.style = "linear";
  LrScheduler l(s);
  EXPECT_NEAR(l.lr_at(35), 0.1 + 0.9 * 0.75, 1e-12);
  s.style = "constant";
  LrScheduler k(s);
  EXPECT_DOUBLE_EQ(k.lr_at(5), 0.5);  // warmup still applies
  EXPECT_DOUBLE_EQ(k.lr_at(500), 1.0);
}
