// LayerNorm forward / backward against double references, finite differences and thread-count
// determinism.
#include <vector>

#include "loom/kernels/cpu/layernorm.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

struct LnRef {
  std::vector<double> y, mean, rstd;
};

LnRef ln_forward_ref(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b, int N,
                     int C, double eps) {
  LnRef r{std::vector<double>(x.size()), std::vector<double>(N), std::vector<double>(N)};
  for (int i = 0; i < N; i++) {
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) m += x[i * C + c];
    m /= C;
    for (int c = 0; c < C; c++) v += (x[i * C + c] - m) * (x[i * C + c] - m);
    v /= C;
    const double rs = 1.0 / std::sqrt(v + eps);
    for (int c = 0; c < C; c++) r.y[i * C + c] = (x[i * C + c] - m) * rs * w[c] + b[c];
    r.mean[i] = m;
    r.rstd[i] = rs;
  }
  return r;
}

// Gradients of sum(y * dy).
void ln_backward_ref(const std::vector<double>& dy, const std::vector<double>& x, const std::vector<double>& w,
                     int N, int C, double eps, std::vector<double>& dx, std::vector<double>& dw,
                     std::vector<double>& db) {
  dx.assign(x.size(), 0);
  dw.assign(C, 0);
  db.assign(C, 0);
  LnRef f = ln_forward_ref(x, w, std::vector<double>(C, 0.0), N, C, eps);
  for (int i = 0; i < N; i++) {
    double a = 0, bb = 0;
    for (int c = 0; c < C; c++) {
      const double nrm = (x[i * C + c] - f.mean[i]) * f.rstd[i];
      a += dy[i * C + c] * w[c];
      bb += dy[i * C + c] * w[c] * nrm;
      dw[c] += dy[i * C + c] * nrm;
      db[c] += dy[i * C + c];
    }
    a /= C;
    bb /= C;
    for (int c = 0; c < C; c++) {
      const double nrm = (x[i * C + c] - f.mean[i]) * f.rstd[i];
      dx[i * C + c] = f.rstd[i] * (dy[i * C + c] * w[c] - a - nrm * bb);
    }
  }
}

TEST(KernelLayerNorm, ForwardMatchesReference) {
  for (int C : {1, 7, 64, 77}) {
    const int N = 9;
    auto x = random_floats(size_t(N) * C, 1, -2, 3), w = random_floats(C, 2, 0.5, 1.5), b = random_floats(C, 3);
    std::vector<float> y(x.size()), mean(N), rstd(N);
    loom::cpu::layernorm_forward(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
    LnRef r = ln_forward_ref(loom::test::to_double(x), loom::test::to_double(w), loom::test::to_double(b), N, C, 1e-5);
    EXPECT_TRUE(all_close(y, r.y, 1e-5)) << "C " << C;
    EXPECT_TRUE(all_close(mean, r.mean, 1e-5));
    EXPECT_TRUE(all_close(rstd, r.rstd, 1e-5));
  }
}

TEST(KernelLayerNorm, ReferenceBackwardMatchesFiniteDifferences) {
  const int N = 3, C = 6;
  const double eps = 1e-5;
  auto x = loom::test::to_double(random_floats(N * C, 4, -1, 1));
  auto w = loom::test::to_double(random_floats(C, 5, 0.5, 1.5));
  auto b = loom::test::to_double(random_floats(C, 6));
  auto g = loom::test::to_double(random_floats(N * C, 7));
  std::vector<double> dx, dw, db;
  ln_backward_ref(g, x, w, N, C, eps, dx, dw, db);
  auto loss = [&]() {
    auto y = ln_forward_ref(x, w, b, N, C, eps).y;
    double s = 0;
    for (size_t i = 0; i < y.size(); i++) s += y[i] * g[i];
    return s;
  };
  const double h = 1e-6;
  auto fd = [&](std::vector<double>& v, size_t i) {
    const double s = v[i];
    v[i] = s + h;
    const double lp = loss();
    v[i] = s - h;
    const double lm = loss();
    v[i] = s;
    return (lp - lm) / (2 * h);
  };
  for (size_t i = 0; i < x.size(); i++) EXPECT_NEAR(fd(x, i), dx[i], 1e-7 + 1e-6 * std::fabs(dx[i]));
  for (int c = 0; c < C; c++) {
    EXPECT_NEAR(fd(w, c), dw[c], 1e-7 + 1e-6 * std::fabs(dw[c]));
    EXPECT_NEAR(fd(b, c), db[c], 1e-7 + 1e-6 * std::fabs(db[c]));
  }
}

TEST(KernelLayerNorm, BackwardAccumulatesAndMatchesReference) {
  for (int C : {5, 64, 130}) {
    const int N = 37;
    auto x = random_floats(size_t(N) * C, 8, -2, 2), w = random_floats(C, 9, 0.5, 1.5), b = random_floats(C, 10);
    auto dy = random_floats(x.size(), 11);
    std::vector<float> y(x.size()), mean(N), rstd(N);
    loom::cpu::layernorm_forward(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
    auto dx = random_floats(x.size(), 12), dw = random_floats(C, 13), db = random_floats(C, 14);
    std::vector<double> rdx, rdw, rdb;
    ln_backward_ref(loom::test::to_double(dy), loom::test::to_double(x), loom::test::to_double(w), N, C, 1e-5, rdx,
                    rdw, rdb);
    // The kernel accumulates into its outputs; compare the increments (accumulate in double).
    std::vector<double> wdx(x.size()), wdw(C), wdb(C);
    for (size_t i = 0; i < x.size(); i++) wdx[i] = double(dx[i]) + rdx[i];
    for (int c = 0; c < C; c++) {
      wdw[c] = double(dw[c]) + rdw[c];
      wdb[c] = double(db[c]) + rdb[c];
    }
    std::vector<float> dx0 = dx;
    loom::cpu::layernorm_backward(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                                  db.data(), N, C);
    std::vector<double> inc(x.size());
    for (size_t i = 0; i < x.size(); i++) inc[i] = double(dx[i]) - double(dx0[i]);
    EXPECT_TRUE(all_close(inc, rdx, 1e-5)) << "C " << C;
    EXPECT_TRUE(all_close(dw, wdw, 1e-5));
    EXPECT_TRUE(all_close(db, wdb, 1e-5));
  }
}

TEST(KernelLayerNorm, BackwardFiniteDifferencesOnKernel) {
  const int N = 4, C = 24;
  auto x = random_floats(N * C, 15, -1, 1), w = random_floats(C, 16, 0.5, 1.5), b = random_floats(C, 17);
  auto g = random_floats(N * C, 18);
  std::vector<float> y(x.size()), mean(N), rstd(N), dx(x.size(), 0.0f), dw(C, 0.0f), db(C, 0.0f);
  loom::cpu::layernorm_forward(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
  loom::cpu::layernorm_backward(g.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(), db.data(),
                                N, C);
  auto loss = [&]() {
    loom::cpu::layernorm_forward(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
    double s = 0;
    for (size_t i = 0; i < y.size(); i++) s += double(y[i]) * g[i];
    return s;
  };
  const float h = 1e-3f;
  for (size_t i = 0; i < x.size(); i += 5) {
    const float s = x[i];
    x[i] = s + h;
    const double lp = loss();
    x[i] = s - h;
    const double lm = loss();
    x[i] = s;
    EXPECT_NEAR((lp - lm) / (2 * h), dx[i], 1e-2 * (std::fabs(dx[i]) + 0.1)) << i;
  }
}

TEST(KernelLayerNorm, DeterministicAcrossThreadCounts) {
  const int N = 512, C = 192;
  auto x = random_floats(size_t(N) * C, 19, -2, 2), w = random_floats(C, 20, 0.5, 1.5), b = random_floats(C, 21);
  auto dy = random_floats(x.size(), 22);
  std::vector<float> outs[2][5];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    std::vector<float> y(x.size()), mean(N), rstd(N), dx(x.size(), 0.0f), dw(C, 0.0f), db(C, 0.0f);
    loom::cpu::layernorm_forward(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
    loom::cpu::layernorm_backward(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                                  db.data(), N, C);
    outs[t][0] = y;
    outs[t][1] = rstd;
    outs[t][2] = dx;
    outs[t][3] = dw;
    outs[t][4] = db;
  }
  for (int k = 0; k < 5; k++) EXPECT_TRUE(loom::test::bitwise_equal(outs[0][k], outs[1][k])) << "output " << k;
}

}  // namespace
