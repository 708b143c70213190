// LAMB kernels (two phases over element ranges): double-precision reference of the LAMB / apex FusedLAMB
// formulas, ranges split anywhere, thread-count independence, and phase 2 recomputing phase 1's u.
#include <algorithm>
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

// One parameter tensor: the kernel's fp32 state and the reference's double state.
struct Param {
  std::vector<float> w, m, v;
  std::vector<double> rw, rm, rv;
  bool zero_grad = false;
};

Param make_param(long n, uint64_t seed, bool zero_weights, bool zero_grad = false) {
  Param p;
  p.w = zero_weights ? std::vector<float>(size_t(n), 0.0f) : random_floats(size_t(n), seed, -0.5f, 0.5f);
  p.m.assign(size_t(n), 0.0f);
  p.v.assign(size_t(n), 0.0f);
  p.rw.assign(p.w.begin(), p.w.end());
  p.rm.assign(size_t(n), 0.0);
  p.rv.assign(size_t(n), 0.0);
  p.zero_grad = zero_grad;
  return p;
}

// The formulas, in double, on the same fp32 gradients; returns the trust ratio.
double reference_step(Param& p, const std::vector<float>& g, const LambConfig& c) {
  const double b1 = c.beta1, b2 = c.beta2, eps = c.eps, wd = c.weight_decay, lr = c.lr;
  const double bc1 = 1 - std::pow(b1, double(c.step)), bc2 = 1 - std::pow(b2, double(c.step));
  const size_t n = p.rw.size();
  std::vector<double> u(n);
  double w_sq = 0, u_sq = 0;
  for (size_t i = 0; i < n; i++) {
    p.rm[i] = b1 * p.rm[i] + (1 - b1) * g[i];
    p.rv[i] = b2 * p.rv[i] + (1 - b2) * double(g[i]) * g[i];
    u[i] = (p.rm[i] / bc1) / (std::sqrt(p.rv[i] / bc2) + eps) + wd * p.rw[i];
    w_sq += p.rw[i] * p.rw[i];
    u_sq += u[i] * u[i];
  }
  const double r = (w_sq > 0 && u_sq > 0) ? std::sqrt(w_sq) / std::sqrt(u_sq) : 1.0;
  for (size_t i = 0; i < n; i++) p.rw[i] -= lr * r * u[i];
  return r;
}

float kernel_step(Param& p, const std::vector<float>& g, const LambConfig& c) {
  const long n = long(p.w.size());
  double w_sq = 0, u_sq = 0;
  loom::cpu::lamb_phase1(p.w.data(), g.data(), p.m.data(), p.v.data(), n, c, &w_sq, &u_sq);
  const float r = loom::cpu::lamb_trust_ratio(w_sq, u_sq);
  loom::cpu::lamb_phase2(p.w.data(), p.m.data(), p.v.data(), n, c, r);
  return r;
}

TEST(KernelLamb, StepsMatchDoubleReference) {
  for (float wd : {0.0f, 0.01f}) {
    std::vector<Param> params;
    uint64_t seed = 100;
    for (long n : {1L, 7L, 1000L, 4099L}) params.push_back(make_param(n, seed++, false));
    params.push_back(make_param(33, seed++, true));          // zero weights: ratio 1 at step 1
    params.push_back(make_param(5, seed++, false, true));    // zero gradients: u = wd * w
    params.push_back(make_param(40000, seed++, false));      // several blocks
    LambConfig cfg{2e-2f, 0.9f, 0.999f, 1e-6f, wd, 0};
    for (int step = 1; step <= 5; step++) {
      cfg.step = step;
      for (size_t t = 0; t < params.size(); t++) {
        Param& p = params[t];
        const size_t n = p.w.size();
        const std::vector<float> g =
            p.zero_grad ? std::vector<float>(n, 0.0f) : random_floats(n, 1000 * step + t, -0.5f, 0.5f);
        const float r = kernel_step(p, g, cfg);
        const double rr = reference_step(p, g, cfg);
        const std::string where = "wd " + std::to_string(wd) + " step " + std::to_string(step) + " n " +
                                  std::to_string(n) + " tensor " + std::to_string(t);
        EXPECT_NEAR(r, rr, 1e-5 * rr) << where;
        EXPECT_TRUE(all_close(p.m, p.rm, 1e-5)) << where;
        EXPECT_TRUE(all_close(p.v, p.rv, 1e-5)) << where;
        EXPECT_TRUE(all_close(p.w, p.rw, 1e-5)) << where;
        if (t == 4 && step == 1) {
          EXPECT_EQ(r, 1.0f) << where;  // ||w|| = 0
        }
        if (t == 5) {
          if (wd == 0.0f) {  // u = 0: ratio 1 and nothing moves
            EXPECT_EQ(r, 1.0f) << where;
            EXPECT_TRUE(bitwise_equal(p.w, random_floats(n, 105, -0.5f, 0.5f))) << where;
          } else {  // u = wd * w, so ||w|| / ||u|| = 1 / wd
            EXPECT_NEAR(r, 1.0 / wd, 1e-5 / wd) << where;
          }
        }
      }
    }
  }
}

TEST(KernelLamb, SplitRangesBitIdenticalToOneRange) {
  // As ZeRO shards or streamed blocks: phase 1 on every range adding into the same two sums, then
  // phase 2 on every range. Splits inside a group of 8, at and next to block boundaries (16384).
  const long n = 40009;
  for (long split : {1L, 8L, 13L, 4099L, 16384L, 16391L, 20000L, n - 1}) {
    Param whole = make_param(n, 7, false), parts = whole;
    LambConfig cfg{1e-2f, 0.9f, 0.95f, 1e-8f, 0.01f, 0};
    for (int step = 1; step <= 3; step++) {
      cfg.step = step;
      const auto g = random_floats(size_t(n), 50 + step, -1.0f, 1.0f);
      double ws1 = 0, us1 = 0, ws2 = 0, us2 = 0;
      loom::cpu::lamb_phase1(whole.w.data(), g.data(), whole.m.data(), whole.v.data(), n, cfg, &ws1, &us1);
      const float r1 = loom::cpu::lamb_trust_ratio(ws1, us1);
      loom::cpu::lamb_phase2(whole.w.data(), whole.m.data(), whole.v.data(), n, cfg, r1);

      const long lens[2] = {split, n - split}, offs[2] = {0, split};
      for (int k = 0; k < 2; k++) {
        const long o = offs[k];
        loom::cpu::lamb_phase1(parts.w.data() + o, g.data() + o, parts.m.data() + o, parts.v.data() + o, lens[k],
                               cfg, &ws2, &us2);
      }
      const float r2 = loom::cpu::lamb_trust_ratio(ws2, us2);
      for (int k = 0; k < 2; k++) {
        const long o = offs[k];
        loom::cpu::lamb_phase2(parts.w.data() + o, parts.m.data() + o, parts.v.data() + o, lens[k], cfg, r2);
      }
      const std::string where = "split " + std::to_string(split) + " step " + std::to_string(step);
      // The double sums are added in another order, so they may differ in their last bits...
      EXPECT_NEAR(ws2, ws1, 1e-13 * ws1) << where;
      EXPECT_NEAR(us2, us1, 1e-13 * us1) << where;
      // ...which the fp32 ratio absorbs (a difference would need the double quotient within ~1e-16 of
      // a rounding boundary of the float); the element updates themselves are position independent.
      EXPECT_EQ(r2, r1) << where;
      EXPECT_TRUE(bitwise_equal(parts.m, whole.m)) << where;
      EXPECT_TRUE(bitwise_equal(parts.v, whole.v)) << where;
      EXPECT_TRUE(bitwise_equal(parts.w, whole.w)) << where;
    }
  }
}

TEST(KernelLamb, DeterministicAcrossThreadCounts) {
  const long n = 100003;  // several blocks, enough for a parallel region
  Param p[2] = {make_param(n, 9, false), make_param(n, 9, false)};
  LambConfig cfg{1e-3f, 0.9f, 0.999f, 1e-6f, 0.01f, 0};
  for (int step = 1; step <= 3; step++) {
    cfg.step = step;
    const auto g = random_floats(size_t(n), 70 + step, -2.0f, 2.0f);
    double ws[2] = {0, 0}, us[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
      loom::test::ScopedThreads threads(t + 1);
      loom::cpu::lamb_phase1(p[t].w.data(), g.data(), p[t].m.data(), p[t].v.data(), n, cfg, &ws[t], &us[t]);
      loom::cpu::lamb_phase2(p[t].w.data(), p[t].m.data(), p[t].v.data(), n, cfg,
                             loom::cpu::lamb_trust_ratio(ws[t], us[t]));
    }
    EXPECT_EQ(ws[0], ws[1]) << "step " << step;
    EXPECT_EQ(us[0], us[1]) << "step " << step;
    EXPECT_TRUE(bitwise_equal(p[0].m, p[1].m)) << "step " << step;
    EXPECT_TRUE(bitwise_equal(p[0].v, p[1].v)) << "step " << step;
    EXPECT_TRUE(bitwise_equal(p[0].w, p[1].w)) << "step " << step;
  }
}

TEST(KernelLamb, PhaseTwoRecomputesPhaseOneUpdate) {
  // With w = 0, lr = 1 and ratio 1, phase 2 leaves w = -u exactly (one rounding of 0 - 1*u). Phase 1's
  // sum of w^2 over those weights then uses the same blocks and lanes as its sum of u^2 did: the two
  // agree bitwise only if phase 2's u is bitwise phase 1's.
  for (long n : {1L, 7L, 4099L, 100003L}) {
    for (float wd : {0.0f, 0.01f}) {
      std::vector<float> w(size_t(n), 0.0f), m(size_t(n), 0.0f), v(size_t(n), 0.0f);
      LambConfig cfg{1.0f, 0.9f, 0.999f, 1e-6f, wd, 0};
      double ws = 0, us = 0;
      for (int step = 1; step <= 2; step++) {  // step 2: nonzero moments coming in
        cfg.step = step;
        const auto g = random_floats(size_t(n), 90 + step, -1.0f, 1.0f);
        std::fill(w.begin(), w.end(), 0.0f);
        ws = us = 0;
        loom::cpu::lamb_phase1(w.data(), g.data(), m.data(), v.data(), n, cfg, &ws, &us);
        loom::cpu::lamb_phase2(w.data(), m.data(), v.data(), n, cfg, 1.0f);
      }
      EXPECT_EQ(ws, 0.0);
      std::vector<float> g0(size_t(n), 0.0f), m2(size_t(n), 0.0f), v2(size_t(n), 0.0f);
      double ws2 = 0, us2 = 0;
      loom::cpu::lamb_phase1(w.data(), g0.data(), m2.data(), v2.data(), n, cfg, &ws2, &us2);
      EXPECT_GT(us, 0.0);
      EXPECT_EQ(ws2, us) << "n " << n << " wd " << wd;
    }
  }
}

TEST(KernelLamb, TrustRatioAndEdgeCases) {
  EXPECT_EQ(loom::cpu::lamb_trust_ratio(4.0, 16.0), 0.5f);
  EXPECT_EQ(loom::cpu::lamb_trust_ratio(0.0, 16.0), 1.0f);
  EXPECT_EQ(loom::cpu::lamb_trust_ratio(4.0, 0.0), 1.0f);
  EXPECT_EQ(loom::cpu::lamb_trust_ratio(0.0, 0.0), 1.0f);
  EXPECT_EQ(loom::cpu::lamb_trust_ratio(std::nan(""), 1.0), 1.0f);

  // n = 0 adds nothing and touches nothing.
  LambConfig cfg{1e-2f, 0.9f, 0.999f, 0.0f, 0.01f, 1};
  double ws = 1.5, us = 2.5;
  loom::cpu::lamb_phase1(nullptr, nullptr, nullptr, nullptr, 0, cfg, &ws, &us);
  loom::cpu::lamb_phase2(nullptr, nullptr, nullptr, 0, cfg, 1.0f);
  EXPECT_EQ(ws, 1.5);
  EXPECT_EQ(us, 2.5);

  // eps = 0: the unused lanes of a partial group (0/0 there) must not reach the sums; the sums add to
  // what is already there.
  const long n = 13;
  auto w = random_floats(size_t(n), 3), g = random_floats(size_t(n), 4);
  std::vector<float> m(size_t(n), 0.0f), v(size_t(n), 0.0f);
  loom::cpu::lamb_phase1(w.data(), g.data(), m.data(), v.data(), n, cfg, &ws, &us);
  double want_w = 1.5;
  for (float x : w) want_w += double(x) * x;
  EXPECT_NEAR(ws, want_w, 1e-12 * want_w);
  EXPECT_TRUE(std::isfinite(us));
  EXPECT_GT(us, 2.5);
}

}  // namespace
