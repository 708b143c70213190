// ClipLoss in one process: gradients against central finite differences of its own loss (computed in
// double from the same formula, an independent reference to the analytic backward), gradient
// accumulation into the logit-scale gradient, and its misuse errors. The PyTorch parity and the
// data-parallel checks are tests/parity/test_clip_loss_parity.py and tests/parallel/test_clip_loss_mpi.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "loom/core/error.h"
#include "loom/core/rng.h"
#include "loom/models/coca/clip_loss.h"

namespace loom {
namespace {

// The loss of open_clip's ClipLoss on one process, in double: normalise, logits = s u v^T, symmetric CE.
double reference_loss(const std::vector<double>& x, const std::vector<double>& y, double p, int b, int E) {
  auto norm = [&](const std::vector<double>& a) {
    std::vector<double> u(a.size());
    for (int i = 0; i < b; i++) {
      double ss = 0;
      for (int k = 0; k < E; k++) ss += a[i * E + k] * a[i * E + k];
      const double n = std::max(std::sqrt(ss), 1e-12);
      for (int k = 0; k < E; k++) u[i * E + k] = a[i * E + k] / n;
    }
    return u;
  };
  const auto u = norm(x), v = norm(y);
  const double s = std::exp(p);
  double total = 0;
  for (int dir = 0; dir < 2; dir++) {
    const auto& A = dir ? v : u;
    const auto& B = dir ? u : v;
    for (int i = 0; i < b; i++) {
      std::vector<double> row(b);
      double m = -1e300;
      for (int j = 0; j < b; j++) {
        double d = 0;
        for (int k = 0; k < E; k++) d += A[i * E + k] * B[j * E + k];
        row[j] = s * d;
        m = std::max(m, row[j]);
      }
      double z = 0;
      for (int j = 0; j < b; j++) z += std::exp(row[j] - m);
      total += (m + std::log(z) - row[i]) / b;
    }
  }
  return total / 2;
}

TEST(ClipLoss, GradientsMatchFiniteDifferences) {
  const int b = 5, E = 4;
  Rng rng(7);
  std::vector<float> x(b * E), y(b * E);
  for (int i = 0; i < b * E; i++) {
    x[i] = rng.normal();
    y[i] = rng.normal();
  }
  const float p = 1.2f;
  ClipLoss loss(nullptr, 8, E);
  const ClipLossStats st = loss.forward(x.data(), y.data(), p, b);
  std::vector<float> dx(b * E), dy(b * E);
  float dp = 0.5f;  // accumulates
  loss.backward(3.0f, dx.data(), dy.data(), &dp);

  std::vector<double> xd(x.begin(), x.end()), yd(y.begin(), y.end());
  EXPECT_NEAR(st.loss, reference_loss(xd, yd, p, b, E), 1e-5);
  const double h = 1e-5;
  for (int which = 0; which < 2; which++) {
    auto& a = which ? yd : xd;
    const auto& g = which ? dy : dx;
    for (int i = 0; i < b * E; i++) {
      const double keep = a[i];
      a[i] = keep + h;
      const double up = reference_loss(xd, yd, p, b, E);
      a[i] = keep - h;
      const double down = reference_loss(xd, yd, p, b, E);
      a[i] = keep;
      EXPECT_NEAR(g[i], 3.0 * (up - down) / (2 * h), 2e-5) << (which ? "text " : "image ") << i;
    }
  }
  const double fd_p = (reference_loss(xd, yd, p + h, b, E) - reference_loss(xd, yd, p - h, b, E)) / (2 * h);
  EXPECT_NEAR(dp, 0.5 + 3.0 * fd_p, 2e-5);
  EXPECT_NEAR(st.logit_scale, std::exp(1.2), 1e-5);
}

TEST(ClipLoss, MisuseIsAnError) {
  ClipLoss loss(nullptr, 4, 3);
  std::vector<float> x(5 * 3, 1.0f), d(5 * 3);
  float dp = 0;
  EXPECT_THROW(loss.backward(1.0f, d.data(), d.data(), &dp), UserError);  // no forward yet
  try {
    loss.forward(x.data(), x.data(), 0.0f, 5);
    FAIL() << "a batch above max_batch must be refused";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "ClipLoss: local batch 5 outside [1, 4]");
  }
  loss.forward(x.data(), x.data(), 0.0f, 4);
  loss.backward(1.0f, d.data(), d.data(), &dp);
  EXPECT_THROW(loss.backward(1.0f, d.data(), d.data(), &dp), UserError);  // one backward per forward
}

}  // namespace
}  // namespace loom
