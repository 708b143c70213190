// LAMB kernels in DeepSpeed FusedLamb's arithmetic (LambConfig::deepspeed): a double-precision reference
// of fused_lamb_cuda_kernel.cu's formulas (u without bias correction, eps outside or inside the square
// root, step size lr * sqrt(1-b2^t) / (1-b1^t), trust ratio clamped), ranges split anywhere and thread
// counts giving bitwise the same result.
#include <cmath>
#include <string>
#include <vector>

#include "loom/kernels/cpu/lamb.h"
#include "test_kernels_util.h"

namespace {

using loom::cpu::LambConfig;
using loom::test::all_close;
using loom::test::bitwise_equal;
using loom::test::random_floats;

struct State {
  std::vector<float> w, m, v;
  std::vector<double> rw, rm, rv;
};

State make_state(long n, uint64_t seed, float scale) {
  State s;
  s.w = random_floats(size_t(n), seed, -scale, scale);
  s.m.assign(size_t(n), 0.0f);
  s.v.assign(size_t(n), 0.0f);
  s.rw.assign(s.w.begin(), s.w.end());
  s.rm.assign(size_t(n), 0.0);
  s.rv.assign(size_t(n), 0.0);
  return s;
}

double reference_step(State& s, const std::vector<float>& g, const LambConfig& c, double min_c, double max_c) {
  const double b1 = c.beta1, b2 = c.beta2, eps = c.eps, wd = c.weight_decay;
  const double step_size = c.bias_correction ? c.lr * std::sqrt(1 - std::pow(b2, double(c.step))) /
                                                   (1 - std::pow(b1, double(c.step)))
                                             : c.lr;
  const size_t n = s.rw.size();
  std::vector<double> u(n);
  double w_sq = 0, u_sq = 0;
  for (size_t i = 0; i < n; i++) {
    s.rm[i] = b1 * s.rm[i] + (1 - b1) * g[i];
    s.rv[i] = b2 * s.rv[i] + (1 - b2) * double(g[i]) * g[i];
    const double den = c.eps_inside_sqrt ? std::sqrt(s.rv[i] + eps) : std::sqrt(s.rv[i]) + eps;
    u[i] = s.rm[i] / den + wd * s.rw[i];
    w_sq += s.rw[i] * s.rw[i];
    u_sq += u[i] * u[i];
  }
  double r = 1.0;
  if (w_sq > 0 && u_sq > 0) r = std::min(std::max(std::sqrt(w_sq) / std::sqrt(u_sq), min_c), max_c);
  for (size_t i = 0; i < n; i++) s.rw[i] -= step_size * r * u[i];
  return r;
}

float kernel_step(State& s, const std::vector<float>& g, const LambConfig& c, long split = 0) {
  const long n = long(s.w.size());
  double w_sq = 0, u_sq = 0;
  const long lens[2] = {split, n - split};
  long at = 0;
  for (long len : lens) {
    loom::cpu::lamb_phase1(s.w.data() + at, g.data() + at, s.m.data() + at, s.v.data() + at, len, c, &w_sq, &u_sq);
    at += len;
  }
  const float r = loom::cpu::lamb_trust_ratio_clamped(w_sq, u_sq, 0.01f, 10.0f);
  at = 0;
  for (long len : lens) {
    loom::cpu::lamb_phase2(s.w.data() + at, s.m.data() + at, s.v.data() + at, len, c, r);
    at += len;
  }
  return r;
}

TEST(KernelLambDeepSpeed, StepsMatchDoubleReference) {
  for (bool inside : {false, true}) {
    for (bool bc : {true, false}) {
      // Weights of three scales: the ratio clamped at 10, free, clamped at 0.01.
      std::vector<State> ts = {make_state(777, 1, 500.0f), make_state(4099, 2, 0.5f), make_state(40000, 3, 1e-4f)};
      LambConfig c{1e-2f, 0.9f, 0.999f, 1e-6f, 0.05f, 0};
      c.deepspeed = true;
      c.eps_inside_sqrt = inside;
      c.bias_correction = bc;
      for (int step = 1; step <= 5; step++) {
        c.step = step;
        for (size_t t = 0; t < ts.size(); t++) {
          const auto g = random_floats(ts[t].w.size(), 100 * step + t, -0.5f, 0.5f);
          const float r = kernel_step(ts[t], g, c);
          const double rr = reference_step(ts[t], g, c, 0.01, 10.0);
          const std::string where = std::string("inside ") + (inside ? "1" : "0") + " bc " + (bc ? "1" : "0") +
                                    " step " + std::to_string(step) + " tensor " + std::to_string(t);
          EXPECT_NEAR(r, rr, 1e-5 * rr) << where;
          if (t == 0) {
            EXPECT_EQ(r, 10.0f) << where;
          }
          if (t == 2) {
            EXPECT_EQ(r, 0.01f) << where;
          }
          EXPECT_TRUE(all_close(ts[t].w, ts[t].rw, 1e-5)) << where;
          EXPECT_TRUE(all_close(ts[t].m, ts[t].rm, 1e-5)) << where;
        }
      }
    }
  }
}

TEST(KernelLambDeepSpeed, StepSizeInFloat) {
  LambConfig c{1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 3};
  c.deepspeed = true;
  const float bc1 = float(1.0 - std::pow(0.9f, 3)), bc2 = float(1.0 - std::pow(0.999f, 3));
  EXPECT_EQ(loom::cpu::deepspeed_lamb_step_size(c), 1e-3f * std::sqrt(bc2) / bc1);
  c.bias_correction = false;
  EXPECT_EQ(loom::cpu::deepspeed_lamb_step_size(c), 1e-3f);
  EXPECT_EQ(loom::cpu::lamb_trust_ratio_clamped(0.0, 4.0, 0.01f, 10.0f), 1.0f);  // a zero norm: 1, unclamped
  EXPECT_EQ(loom::cpu::lamb_trust_ratio_clamped(400.0, 1.0, 0.01f, 10.0f), 10.0f);
  EXPECT_EQ(loom::cpu::lamb_trust_ratio_clamped(1e-8, 1.0, 0.01f, 10.0f), 0.01f);
}

TEST(KernelLambDeepSpeed, SplitsAndThreadsBitIdentical) {
  const long n = 40009;
  for (long split : {8L, 13L, 16384L, 20001L}) {
    for (int threads : {1, 2}) {
      State whole = make_state(n, 5, 0.3f), parts = whole;
      LambConfig c{1e-2f, 0.9f, 0.95f, 1e-8f, 0.01f, 0};
      c.deepspeed = true;
      c.eps_inside_sqrt = split % 2 == 1;
      for (int step = 1; step <= 3; step++) {
        c.step = step;
        const auto g = random_floats(size_t(n), 60 + step, -1.0f, 1.0f);
        float r1, r2;
        {
          loom::test::ScopedThreads one(1);
          r1 = kernel_step(whole, g, c);
        }
        {
          loom::test::ScopedThreads t(threads);
          r2 = kernel_step(parts, g, c, split);
        }
        const std::string where = "split " + std::to_string(split) + " threads " + std::to_string(threads);
        EXPECT_EQ(r1, r2) << where;
        EXPECT_TRUE(bitwise_equal(parts.w, whole.w)) << where;
        EXPECT_TRUE(bitwise_equal(parts.v, whole.v)) << where;
      }
    }
  }
}

}  // namespace
