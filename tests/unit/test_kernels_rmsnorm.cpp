// RMSNorm (Llama): forward and backward against a naive double reference, finite differences, and
// bitwise thread-count independence of the dweight reduction.
#include <vector>

#include "loom/kernels/cpu/rmsnorm.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

struct RmsRef {
  std::vector<double> y, rstd, dx, dw;
};

// y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); dx and dw start from dx0, dw0 (accumulate).
RmsRef rms_ref(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& dy,
               const std::vector<float>& dx0, const std::vector<float>& dw0, int N, int C, double eps) {
  RmsRef r{std::vector<double>(x.size()), std::vector<double>(N), std::vector<double>(dx0.begin(), dx0.end()),
           std::vector<double>(dw0.begin(), dw0.end())};
  for (int n = 0; n < N; n++) {
    const float* xr = &x[size_t(n) * C];
    const float* g = &dy[size_t(n) * C];
    double ss = 0;
    for (int c = 0; c < C; c++) ss += double(xr[c]) * xr[c];
    const double rs = 1.0 / std::sqrt(ss / C + eps);
    r.rstd[n] = rs;
    double a = 0;
    for (int c = 0; c < C; c++) {
      r.y[size_t(n) * C + c] = xr[c] * rs * w[c];
      a += double(g[c]) * w[c] * xr[c] * rs;
      r.dw[c] += double(g[c]) * xr[c] * rs;
    }
    for (int c = 0; c < C; c++) r.dx[size_t(n) * C + c] += rs * (double(g[c]) * w[c] - xr[c] * rs * a / C);
  }
  return r;
}

TEST(KernelRmsNorm, ForwardAndBackwardMatchReference) {
  for (int C : {1, 7, 64, 100}) {
    const int N = 13;
    auto x = random_floats(size_t(N) * C, 1 + C, -2, 2), w = random_floats(C, 2 + C, 0.5f, 1.5f);
    auto dy = random_floats(x.size(), 3 + C), dx = random_floats(x.size(), 4 + C), dw = random_floats(C, 5 + C);
    const RmsRef r = rms_ref(x, w, dy, dx, dw, N, C, 1e-5);
    std::vector<float> y(x.size()), rstd(N);
    loom::cpu::rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), N, C, 1e-5f);
    EXPECT_TRUE(all_close(y, r.y, 1e-6)) << "C " << C;
    EXPECT_TRUE(all_close(rstd, r.rstd, 1e-6)) << "C " << C;
    loom::cpu::rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), dx.data(), dw.data(), N, C);
    EXPECT_TRUE(all_close(dx, r.dx, 1e-5)) << "C " << C;
    EXPECT_TRUE(all_close(dw, r.dw, 1e-5)) << "C " << C;
    // dweight may be null: dx is the same.
    std::vector<float> dx2 = random_floats(x.size(), 4 + C);
    loom::cpu::rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), dx2.data(), nullptr, N, C);
    EXPECT_TRUE(loom::test::bitwise_equal(dx, dx2));
  }
}

TEST(KernelRmsNorm, BackwardFiniteDifferencesOnKernel) {
  const int N = 4, C = 24;
  auto x = random_floats(size_t(N) * C, 10, -2, 2), w = random_floats(C, 11, 0.5f, 1.5f),
       g = random_floats(x.size(), 12);
  std::vector<float> y(x.size()), rstd(N), dx(x.size(), 0.0f), dw(C, 0.0f);
  loom::cpu::rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), N, C, 1e-5f);
  loom::cpu::rmsnorm_backward(g.data(), x.data(), w.data(), rstd.data(), dx.data(), dw.data(), N, C);
  auto loss = [&]() {
    loom::cpu::rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), N, C, 1e-5f);
    double s = 0;
    for (size_t i = 0; i < y.size(); i++) s += double(y[i]) * g[i];
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
  for (size_t i = 0; i < x.size(); i++) EXPECT_NEAR(fd(x[i]), dx[i], 1e-2 * std::fabs(dx[i]) + 1e-3) << i;
  for (int c = 0; c < C; c++) EXPECT_NEAR(fd(w[c]), dw[c], 1e-2 * std::fabs(dw[c]) + 1e-3) << c;
}

TEST(KernelRmsNorm, DeterministicAcrossThreadCounts) {
  const int N = 1000, C = 96;
  auto x = random_floats(size_t(N) * C, 20, -3, 3), w = random_floats(C, 21), dy = random_floats(x.size(), 22);
  std::vector<float> res[2][4];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    std::vector<float> y(x.size()), rstd(N), dx(x.size(), 0.5f), dw(C, 0.25f);
    loom::cpu::rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), N, C, 1e-6f);
    loom::cpu::rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), dx.data(), dw.data(), N, C);
    res[t][0] = y;
    res[t][1] = rstd;
    res[t][2] = dx;
    res[t][3] = dw;
  }
  for (int k = 0; k < 4; k++) EXPECT_TRUE(loom::test::bitwise_equal(res[0][k], res[1][k])) << k;
}

}  // namespace
