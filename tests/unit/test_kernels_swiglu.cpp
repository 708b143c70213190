// SwiGLU, exact (erf) GELU and quick GELU, each fused with a bias: against naive double references,
// finite differences on the kernels, and bitwise thread-count independence.
#include <functional>
#include <vector>

#include "loom/kernels/cpu/activation.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

double sigmoid(double u) { return 1.0 / (1.0 + std::exp(-u)); }
double silu_ref(double u) { return u * sigmoid(u); }
double silu_grad_ref(double u) {
  const double s = sigmoid(u);
  return s * (1.0 + u * (1.0 - s));
}
// Phi(u) = erfc(-u / sqrt(2)) / 2 (no cancellation for negative u).
double cdf(double u) { return 0.5 * std::erfc(-u / std::sqrt(2.0)); }
double gelu_exact_ref(double u) { return u * cdf(u); }
double gelu_exact_grad_ref(double u) { return cdf(u) + u * std::exp(-0.5 * u * u) / std::sqrt(2.0 * M_PI); }
double quick_gelu_ref(double u) { return u * sigmoid(1.702 * u); }
double quick_gelu_grad_ref(double u) {
  const double s = sigmoid(1.702 * u);
  return s + 1.702 * u * s * (1.0 - s);
}

std::vector<float> act_inputs(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed, -8, 8);
  const float special[] = {0.0f, -0.0f, 1e-8f, -1e-8f, 12.0f, -12.0f, 30.0f, -30.0f, 100.0f, -100.0f, 1e4f, -1e4f};
  for (size_t i = 0; i < sizeof special / sizeof special[0] && i < n; i++) x[i * 5 % n] = special[i];
  return x;
}

TEST(KernelGeluVariants, ReferenceDerivativesMatchFiniteDifferences) {
  for (double u = -7; u <= 7; u += 0.29) {
    const double h = 1e-5;
    EXPECT_NEAR((gelu_exact_ref(u + h) - gelu_exact_ref(u - h)) / (2 * h), gelu_exact_grad_ref(u), 1e-8) << u;
    EXPECT_NEAR((quick_gelu_ref(u + h) - quick_gelu_ref(u - h)) / (2 * h), quick_gelu_grad_ref(u), 1e-8) << u;
    EXPECT_NEAR((silu_ref(u + h) - silu_ref(u - h)) / (2 * h), silu_grad_ref(u), 1e-8) << u;
  }
  // Against the erf form where it is well conditioned.
  for (double u = -3; u <= 5; u += 0.1)
    EXPECT_NEAR(gelu_exact_ref(u), 0.5 * u * (1.0 + std::erf(u / std::sqrt(2.0))), 1e-12);
}

struct Act {
  const char* name;
  void (*fwd)(const float*, const float*, float*, int, int);
  void (*bwd)(const float*, const float*, const float*, float*, float*, int, int);
  double (*f)(double);
  double (*g)(double);
};
const Act kActs[] = {
    {"gelu_exact", loom::cpu::bias_gelu_exact_forward, loom::cpu::bias_gelu_exact_backward, gelu_exact_ref,
     gelu_exact_grad_ref},
    {"quick_gelu", loom::cpu::bias_quick_gelu_forward, loom::cpu::bias_quick_gelu_backward, quick_gelu_ref,
     quick_gelu_grad_ref},
};

TEST(KernelGeluVariants, ForwardAndBackwardMatchReference) {
  for (const Act& a : kActs)
    for (int C : {1, 7, 8, 37, 64}) {
      const int N = 11;
      auto x = act_inputs(size_t(N) * C, 1 + C), bias = random_floats(C, 2 + C);
      auto dy = random_floats(x.size(), 3 + C), dbias = random_floats(C, 4 + C);
      for (bool with_bias : {true, false}) {
        const float* b = with_bias ? bias.data() : nullptr;
        std::vector<float> y(x.size()), dx(x.size()), db = dbias;
        a.fwd(x.data(), b, y.data(), N, C);
        a.bwd(dy.data(), x.data(), b, dx.data(), with_bias ? db.data() : nullptr, N, C);
        std::vector<double> wdb(dbias.begin(), dbias.end());
        for (size_t i = 0; i < x.size(); i++) {
          const float u = x[i] + (with_bias ? bias[i % C] : 0.0f);  // the kernel adds the bias in fp32
          const double wy = a.f(u), wdx = double(dy[i]) * a.g(u);
          wdb[i % C] += wdx;
          ASSERT_NEAR(y[i], wy, 2e-6 * std::fabs(wy) + 1e-30) << a.name << " u " << u;
          ASSERT_NEAR(dx[i], wdx, 2e-6 * std::fabs(wdx) + 1e-7 * std::fabs(dy[i])) << a.name << " u " << u;
        }
        if (with_bias) {
          EXPECT_TRUE(all_close(db, wdb, 1e-5)) << a.name;
        }
      }
      // In place (dx aliases dy).
      std::vector<float> d = dy, dx(x.size());
      a.bwd(dy.data(), x.data(), nullptr, dx.data(), nullptr, N, C);
      a.bwd(d.data(), x.data(), nullptr, d.data(), nullptr, N, C);
      EXPECT_TRUE(loom::test::bitwise_equal(d, dx)) << a.name;
    }
}

TEST(KernelGeluVariants, ExactGeluKeepsRelativeAccuracyInTheTail) {
  // u Phi(u) down to Phi ~ 1e-30: the erfc form keeps about 1e-6 relative error where 1 + erf would not.
  std::vector<float> x;
  for (float u = -11.0f; u <= 6.0f; u += 0.0137f) x.push_back(u);
  std::vector<float> y(x.size());
  loom::cpu::bias_gelu_exact_forward(x.data(), nullptr, y.data(), 1, int(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); i++)
    if (x[i] != 0.0f) worst = std::max(worst, std::fabs(y[i] - gelu_exact_ref(x[i])) / std::fabs(gelu_exact_ref(x[i])));
  EXPECT_LT(worst, 2e-6);
  // Special values, as torch.nn.functional.gelu gives them (-inf * 0 is NaN there too).
  std::vector<float> s = {INFINITY, -INFINITY, NAN, 0.0f}, t(4);
  loom::cpu::bias_gelu_exact_forward(s.data(), nullptr, t.data(), 1, 4);
  EXPECT_EQ(t[0], INFINITY);
  EXPECT_TRUE(std::isnan(t[1]));
  EXPECT_TRUE(std::isnan(t[2]));
  EXPECT_EQ(t[3], 0.0f);
}

TEST(KernelSwiglu, ForwardAndBackwardMatchReference) {
  for (int F : {1, 7, 8, 37, 64}) {
    const int N = 9;
    auto x = act_inputs(size_t(N) * 2 * F, 10 + F), bias = random_floats(2 * F, 11 + F);
    auto dy = random_floats(size_t(N) * F, 12 + F), dbias = random_floats(2 * F, 13 + F);
    for (bool with_bias : {true, false}) {
      const float* b = with_bias ? bias.data() : nullptr;
      std::vector<float> y(size_t(N) * F, 7.0f), dx(x.size(), 9.0f), db = dbias;
      loom::cpu::bias_swiglu_forward(x.data(), b, y.data(), N, F);
      loom::cpu::bias_swiglu_backward(dy.data(), x.data(), b, dx.data(), with_bias ? db.data() : nullptr, N, F);
      std::vector<double> wdb(dbias.begin(), dbias.end());
      for (int n = 0; n < N; n++)
        for (int c = 0; c < F; c++) {
          const float u = x[size_t(n) * 2 * F + c] + (with_bias ? bias[c] : 0.0f);
          const float v = x[size_t(n) * 2 * F + F + c] + (with_bias ? bias[F + c] : 0.0f);
          const double g = dy[size_t(n) * F + c];
          const double wy = silu_ref(u) * v, wda = g * v * silu_grad_ref(u), wdb_ = g * silu_ref(u);
          wdb[c] += wda;
          wdb[F + c] += wdb_;
          ASSERT_NEAR(y[size_t(n) * F + c], wy, 2e-6 * std::fabs(wy) + 1e-30) << "F " << F << " u " << u;
          ASSERT_NEAR(dx[size_t(n) * 2 * F + c], wda, 2e-6 * std::fabs(wda) + 1e-7 * std::fabs(g * v)) << u;
          ASSERT_NEAR(dx[size_t(n) * 2 * F + F + c], wdb_, 2e-6 * std::fabs(wdb_) + 1e-30) << u;
        }
      if (with_bias) {
        EXPECT_TRUE(all_close(db, wdb, 1e-5)) << "F " << F;
      }
      // dx may alias x.
      std::vector<float> xi = x;
      loom::cpu::bias_swiglu_backward(dy.data(), xi.data(), b, xi.data(), nullptr, N, F);
      EXPECT_TRUE(loom::test::bitwise_equal(xi, dx)) << "F " << F;
    }
  }
}

// Finite differences of sum(y * g) with respect to x and bias, on the kernels themselves.
void check_fd(const std::function<void(const float*, const float*, float*)>& fwd,
              const std::function<void(const float*, const float*, const float*, float*, float*)>& bwd, size_t nx,
              size_t ny, size_t nb, uint64_t seed) {
  auto x = random_floats(nx, seed, -3, 3), bias = random_floats(nb, seed + 1), g = random_floats(ny, seed + 2);
  std::vector<float> y(ny), dx(nx), db(nb, 0.0f);
  bwd(g.data(), x.data(), bias.data(), dx.data(), db.data());
  auto loss = [&]() {
    fwd(x.data(), bias.data(), y.data());
    double s = 0;
    for (size_t i = 0; i < ny; i++) s += double(y[i]) * g[i];
    return s;
  };
  const float h = 1e-3f;
  auto fd = [&](float& v) {
    const float s = v;
    v = s + h;
    const double lp = loss();
    v = s - h;
    const double lm = loss();
    v = s;
    return (lp - lm) / (2 * h);
  };
  for (size_t i = 0; i < nx; i++) EXPECT_NEAR(fd(x[i]), dx[i], 1e-2 * (std::fabs(dx[i]) + 0.05)) << i;
  for (size_t c = 0; c < nb; c++) EXPECT_NEAR(fd(bias[c]), db[c], 1e-2 * (std::fabs(db[c]) + 0.05)) << c;
}

TEST(KernelSwiglu, BackwardFiniteDifferencesOnKernels) {
  const int N = 3, F = 13, C = 20;
  check_fd([&](const float* x, const float* b, float* y) { loom::cpu::bias_swiglu_forward(x, b, y, N, F); },
           [&](const float* dy, const float* x, const float* b, float* dx, float* db) {
             loom::cpu::bias_swiglu_backward(dy, x, b, dx, db, N, F);
           },
           size_t(N) * 2 * F, size_t(N) * F, 2 * F, 30);
  for (const Act& a : kActs)
    check_fd(
        [&](const float* x, const float* b, float* y) { a.fwd(x, b, y, N, C); },
        [&](const float* dy, const float* x, const float* b, float* dx, float* db) { a.bwd(dy, x, b, dx, db, N, C); },
        size_t(N) * C, size_t(N) * C, C, 40);
}

TEST(KernelSwiglu, DeterministicAcrossThreadCounts) {
  const int N = 1000, F = 72;
  auto x = random_floats(size_t(N) * 2 * F, 50, -4, 4), bias = random_floats(2 * F, 51);
  auto dy = random_floats(size_t(N) * 2 * F, 52);
  std::vector<std::vector<float>> res[2];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    std::vector<float> y(size_t(N) * F), dx(x.size()), db(2 * F, 0.5f);
    loom::cpu::bias_swiglu_forward(x.data(), bias.data(), y.data(), N, F);
    loom::cpu::bias_swiglu_backward(dy.data(), x.data(), bias.data(), dx.data(), db.data(), N, F);
    res[t] = {y, dx, db};
    for (const Act& a : kActs) {  // the same data as N x 2F matrices
      std::vector<float> ya(x.size()), dxa(x.size()), dba(2 * F, 0.5f);
      a.fwd(x.data(), bias.data(), ya.data(), N, 2 * F);
      a.bwd(dy.data(), x.data(), bias.data(), dxa.data(), dba.data(), N, 2 * F);
      res[t].insert(res[t].end(), {ya, dxa, dba});
    }
  }
  ASSERT_EQ(res[0].size(), 9u);
  for (size_t k = 0; k < res[0].size(); k++) EXPECT_TRUE(loom::test::bitwise_equal(res[0][k], res[1][k])) << k;
}

}  // namespace
