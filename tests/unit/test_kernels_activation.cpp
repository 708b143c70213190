// bias_gelu (tanh form), add_bias and bias_backward.
#include <vector>

#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/simd.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

// The definition (tanh form). In double, 1 + tanh(z) cancels for very negative u, so the comparisons
// use the identical function written as u * sigmoid(2z), checked against this one where it is well
// conditioned.
double gelu_tanh_ref(double u) {
  return 0.5 * u * (1.0 + std::tanh(0.7978845608028654 * (u + 0.044715 * u * u * u)));
}
double gelu_ref(double u) {
  const double z = 0.7978845608028654 * (u + 0.044715 * u * u * u);
  return u / (1.0 + std::exp(-2.0 * z));
}
double gelu_grad_ref(double u) {
  const double k = 0.7978845608028654, a = 0.044715;
  const double e = std::exp(-2.0 * k * (u + a * u * u * u));
  const double s = 1.0 / (1.0 + e), oms = 1.0 / (1.0 + 1.0 / e);
  return s + 2.0 * u * s * oms * k * (1.0 + 3.0 * a * u * u);
}

TEST(KernelGelu, ReferenceFormsAgree) {
  for (double u = -5; u <= 5; u += 0.01) EXPECT_NEAR(gelu_ref(u), gelu_tanh_ref(u), 1e-9 * std::fabs(gelu_ref(u)) + 1e-300);
}

// Inputs covering the interesting range, including large magnitudes.
std::vector<float> gelu_inputs(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed, -6, 6);
  const float special[] = {0.0f, -0.0f, 1e-8f, -1e-8f, 20.0f, -20.0f, 100.0f, -100.0f, -0.75179f, 1e4f, -1e4f};
  for (size_t i = 0; i < sizeof special / sizeof special[0] && i < n; i++) x[i * 3 % n] = special[i];
  return x;
}

TEST(KernelGelu, ReferenceDerivativeMatchesFiniteDifferences) {
  for (double u = -8; u <= 8; u += 0.37) {
    const double h = 1e-5;
    EXPECT_NEAR((gelu_tanh_ref(u + h) - gelu_tanh_ref(u - h)) / (2 * h), gelu_grad_ref(u), 1e-8) << u;
  }
}

TEST(KernelGelu, ForwardMatchesReference) {
  for (int C : {1, 7, 8, 37, 64}) {
    const int N = 11;
    auto x = gelu_inputs(size_t(N) * C, 1);
    auto bias = random_floats(C, 2);
    for (bool with_bias : {true, false}) {
      std::vector<float> y(x.size());
      loom::cpu::bias_gelu_forward(x.data(), with_bias ? bias.data() : nullptr, y.data(), N, C);
      std::vector<double> want(x.size());
      for (size_t i = 0; i < x.size(); i++) {
        const float u = x[i] + (with_bias ? bias[i % C] : 0.0f);  // the kernel adds the bias in fp32
        want[i] = gelu_ref(u);
      }
      // Elementwise relative error (no help from the tensor scale): 1e-5 of |y| or 1e-30 absolute.
      for (size_t i = 0; i < x.size(); i++)
        ASSERT_NEAR(y[i], want[i], 1e-5 * std::fabs(want[i]) + 1e-30) << "u " << x[i] << " C " << C;
    }
  }
}

TEST(KernelGelu, BackwardMatchesReferenceAndAccumulatesBias) {
  for (int C : {3, 16, 45}) {
    const int N = 29;
    auto x = gelu_inputs(size_t(N) * C, 3);
    auto bias = random_floats(C, 4);
    auto dy = random_floats(x.size(), 5);
    auto dbias = random_floats(C, 6);
    std::vector<double> wdx(x.size()), wdb(dbias.begin(), dbias.end());
    for (size_t i = 0; i < x.size(); i++) {
      wdx[i] = double(dy[i]) * gelu_grad_ref(double(x[i] + bias[i % C]));
      wdb[i % C] += wdx[i];
    }
    std::vector<float> dx(x.size());
    loom::cpu::bias_gelu_backward(dy.data(), x.data(), bias.data(), dx.data(), dbias.data(), N, C);
    for (size_t i = 0; i < x.size(); i++)
      ASSERT_NEAR(dx[i], wdx[i], 1e-5 * std::fabs(wdx[i]) + 1e-7 * std::fabs(dy[i])) << "u " << x[i] + bias[i % C];
    EXPECT_TRUE(all_close(dbias, wdb, 1e-5));
    // In place (dx aliases dy), without a bias.
    std::vector<float> d = dy;
    loom::cpu::bias_gelu_backward(d.data(), x.data(), nullptr, d.data(), nullptr, N, C);
    for (size_t i = 0; i < x.size(); i++) {
      const double w = double(dy[i]) * gelu_grad_ref(x[i]);
      ASSERT_NEAR(d[i], w, 1e-5 * std::fabs(w) + 1e-7 * std::fabs(dy[i]));
    }
  }
}

TEST(KernelGelu, BackwardFiniteDifferencesOnKernel) {
  const int N = 3, C = 20;
  auto x = random_floats(N * C, 7, -3, 3), bias = random_floats(C, 8), dy = random_floats(N * C, 9);
  std::vector<float> dx(x.size()), db(C, 0.0f), y(x.size());
  loom::cpu::bias_gelu_backward(dy.data(), x.data(), bias.data(), dx.data(), db.data(), N, C);
  auto loss = [&]() {
    loom::cpu::bias_gelu_forward(x.data(), bias.data(), y.data(), N, C);
    double s = 0;
    for (size_t i = 0; i < y.size(); i++) s += double(y[i]) * dy[i];
    return s;
  };
  const float h = 1e-3f;
  for (size_t i = 0; i < x.size(); i++) {
    const float s = x[i];
    x[i] = s + h;
    const double lp = loss();
    x[i] = s - h;
    const double lm = loss();
    x[i] = s;
    EXPECT_NEAR((lp - lm) / (2 * h), dx[i], 1e-2 * (std::fabs(dx[i]) + 0.05)) << i;
  }
  for (int c = 0; c < C; c++) {
    const float s = bias[c];
    bias[c] = s + h;
    const double lp = loss();
    bias[c] = s - h;
    const double lm = loss();
    bias[c] = s;
    EXPECT_NEAR((lp - lm) / (2 * h), db[c], 1e-2 * (std::fabs(db[c]) + 0.05)) << c;
  }
}

TEST(KernelBias, AddBiasAndBiasBackward) {
  const int N = 33, C = 19;
  auto out = random_floats(N * C, 10), bias = random_floats(C, 11), dy = random_floats(N * C, 12);
  auto db = random_floats(C, 13);
  std::vector<double> want(out.size()), wdb(db.begin(), db.end());
  for (size_t i = 0; i < out.size(); i++) {
    want[i] = double(out[i]) + bias[i % C];
    wdb[i % C] += dy[i];
  }
  loom::cpu::add_bias(out.data(), bias.data(), N, C);
  loom::cpu::bias_backward(dy.data(), db.data(), N, C);
  EXPECT_TRUE(all_close(out, want, 1e-7));
  EXPECT_TRUE(all_close(db, wdb, 1e-6));
}

TEST(KernelBias, ReductionsDeterministicAcrossThreadCounts) {
  const int N = 1000, C = 96;
  auto x = random_floats(size_t(N) * C, 14, -3, 3), bias = random_floats(C, 15), dy = random_floats(x.size(), 16);
  std::vector<float> res[2][3];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    std::vector<float> db(C, 0.0f), dx(x.size()), dgb(C, 0.0f);
    loom::cpu::bias_backward(dy.data(), db.data(), N, C);
    loom::cpu::bias_gelu_backward(dy.data(), x.data(), bias.data(), dx.data(), dgb.data(), N, C);
    res[t][0] = db;
    res[t][1] = dx;
    res[t][2] = dgb;
  }
  for (int k = 0; k < 3; k++) EXPECT_TRUE(loom::test::bitwise_equal(res[0][k], res[1][k])) << k;
}

TEST(KernelSimd, ExpAccuracyAndSpecialValues) {
  // The vectorised exp behind softmax, GELU and attention: relative error below 4e-7 on [-87, 88].
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.0137) {
    const double got = loom::cpu::detail::exp1(float(x)), want = std::exp(double(float(x)));
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  EXPECT_LT(worst, 4e-7);
  EXPECT_EQ(loom::cpu::detail::exp1(0.0f), 1.0f);
  EXPECT_EQ(loom::cpu::detail::exp1(-200.0f), 0.0f);
  EXPECT_EQ(loom::cpu::detail::exp1(-INFINITY), 0.0f);
  EXPECT_TRUE(std::isfinite(loom::cpu::detail::exp1(1000.0f)));
  EXPECT_TRUE(std::isnan(loom::cpu::detail::exp1(NAN)));
  // NaN inputs propagate through GELU.
  std::vector<float> x = {1.0f, NAN, -1.0f}, y(3);
  loom::cpu::bias_gelu_forward(x.data(), nullptr, y.data(), 1, 3);
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_FALSE(std::isnan(y[0]));
}

}  // namespace
