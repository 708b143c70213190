// The fused output layer + softmax cross-entropy, logits and row softmax.
#include <condition_variable>
#include <mutex>
#include <thread>
#include <stdexcept>
#include <vector>

#include "loom/core/dtype.h"

#include "loom/kernels/cpu/cross_entropy.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

struct CeRef {
  std::vector<double> loss, dx, dW;
};

// Double reference: loss per row; gradients of sum_r row_scale[r] * loss[r] (rows with label < 0 give 0).
CeRef ce_ref(const std::vector<double>& x, const std::vector<double>& W, const std::vector<int32_t>& labels,
             const std::vector<double>& scale, int N, int V, int C) {
  CeRef r{std::vector<double>(N), std::vector<double>(size_t(N) * C), std::vector<double>(size_t(V) * C)};
  std::vector<double> z(V);
  for (int i = 0; i < N; i++) {
    double m = -1e300;
    for (int v = 0; v < V; v++) {
      double s = 0;
      for (int c = 0; c < C; c++) s += x[size_t(i) * C + c] * W[size_t(v) * C + c];
      z[v] = s;
      m = std::max(m, s);
    }
    double sum = 0;
    for (int v = 0; v < V; v++) sum += std::exp(z[v] - m);
    const double lse = m + std::log(sum);
    const int lab = labels[i];
    r.loss[i] = lab >= 0 ? lse - z[lab] : 0.0;
    const double rs = lab >= 0 ? scale[i] : 0.0;
    for (int v = 0; v < V; v++) {
      const double d = rs * (std::exp(z[v] - lse) - (v == lab ? 1.0 : 0.0));
      if (d == 0.0) continue;
      for (int c = 0; c < C; c++) {
        r.dx[size_t(i) * C + c] += d * W[size_t(v) * C + c];
        r.dW[size_t(v) * C + c] += d * x[size_t(i) * C + c];
      }
    }
  }
  return r;
}

struct CeCase {
  int N = 37, V = 1000, C = 32;
  std::vector<float> x, W, scale;
  std::vector<int32_t> labels;
  explicit CeCase(uint64_t seed) {
    x = random_floats(size_t(N) * C, seed, -1, 1);
    W = random_floats(size_t(V) * C, seed + 1, -0.5, 0.5);
    scale = random_floats(size_t(N), seed + 2, 0.5, 1.5);
    labels.resize(N);
    for (int i = 0; i < N; i++) labels[i] = (i * 131 + 7) % V;
    labels[3] = -1;      // masked by label
    scale[5] = 0.0f;     // masked by scale (loss still reported)
    labels[6] = V - 1;
    labels[7] = 0;
  }
};

TEST(KernelCrossEntropy, ReferenceGradientMatchesFiniteDifferences) {
  const int N = 3, V = 7, C = 4;
  auto x = loom::test::to_double(random_floats(N * C, 1)), W = loom::test::to_double(random_floats(V * C, 2));
  std::vector<int32_t> labels = {2, -1, 6};
  std::vector<double> scale = {0.5, 2.0, 1.5};
  CeRef r = ce_ref(x, W, labels, scale, N, V, C);
  auto total = [&]() {
    CeRef q = ce_ref(x, W, labels, scale, N, V, C);
    double s = 0;
    for (int i = 0; i < N; i++) s += scale[i] * q.loss[i];
    return s;
  };
  const double h = 1e-6;
  auto fd = [&](std::vector<double>& v, size_t i) {
    const double s = v[i];
    v[i] = s + h;
    const double lp = total();
    v[i] = s - h;
    const double lm = total();
    v[i] = s;
    return (lp - lm) / (2 * h);
  };
  for (size_t i = 0; i < x.size(); i++) EXPECT_NEAR(fd(x, i), r.dx[i], 1e-7);
  for (size_t i = 0; i < W.size(); i++) EXPECT_NEAR(fd(W, i), r.dW[i], 1e-7);
}

TEST(KernelCrossEntropy, LossAndGradientsMatchReference) {
  CeCase t(10);
  const int N = t.N, V = t.V, C = t.C;
  CeRef r = ce_ref(loom::test::to_double(t.x), loom::test::to_double(t.W), t.labels, loom::test::to_double(t.scale), N,
                   V, C);
  for (int chunk : {1, 8, 37, 64}) {
    std::vector<float> logits(size_t(std::min(chunk, N)) * V);
    std::vector<float> loss(N), dx(size_t(N) * C, 123.0f);
    auto dW = random_floats(size_t(V) * C, 11);
    std::vector<double> wdW(dW.begin(), dW.end());
    for (size_t i = 0; i < wdW.size(); i++) wdW[i] += r.dW[i];
    loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), t.scale.data(), loss.data(), dx.data(),
                                     dW.data(), N, V, C, {logits.data(), chunk});
    EXPECT_TRUE(all_close(loss, r.loss, 1e-5)) << "chunk " << chunk;
    EXPECT_EQ(loss[3], 0.0f);
    EXPECT_GT(loss[5], 0.0f);
    EXPECT_TRUE(all_close(dx, r.dx, 1e-5)) << "chunk " << chunk;
    for (int c = 0; c < C; c++) {
      EXPECT_EQ(dx[size_t(3) * C + c], 0.0f);
      EXPECT_EQ(dx[size_t(5) * C + c], 0.0f);
    }
    EXPECT_TRUE(all_close(dW, wdW, 1e-5)) << "chunk " << chunk;
    // Loss only.
    std::vector<float> loss2(N);
    loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), nullptr, loss2.data(), nullptr, nullptr,
                                     N, V, C, {logits.data(), chunk});
    EXPECT_TRUE(loom::test::bitwise_equal(loss, loss2));
  }
}

// W given as C x V (w_transposed: open_clip's text_projection, logits = x @ W): the same losses and
// gradients as the reference on its transpose, dW in the C x V layout.
TEST(KernelCrossEntropy, TransposedWeightMatchesReference) {
  CeCase t(30);
  const int N = t.N, V = t.V, C = t.C;
  CeRef r = ce_ref(loom::test::to_double(t.x), loom::test::to_double(t.W), t.labels, loom::test::to_double(t.scale), N,
                   V, C);
  std::vector<float> Wt(size_t(C) * V);
  for (int v = 0; v < V; v++)
    for (int c = 0; c < C; c++) Wt[size_t(c) * V + v] = t.W[size_t(v) * C + c];
  std::vector<double> want_dWt(size_t(C) * V);
  for (int v = 0; v < V; v++)
    for (int c = 0; c < C; c++) want_dWt[size_t(c) * V + v] = r.dW[size_t(v) * C + c];
  for (int chunk : {1, 37, 64}) {
    std::vector<float> logits(size_t(std::min(chunk, N)) * V), loss(N), dx(size_t(N) * C, 5.0f), dWt(size_t(C) * V, 0.f);
    loom::cpu::LmHeadScratch scratch{logits.data(), chunk};
    scratch.w_transposed = true;
    loom::cpu::lm_head_cross_entropy(t.x.data(), Wt.data(), t.labels.data(), t.scale.data(), loss.data(), dx.data(),
                                     dWt.data(), N, V, C, scratch);
    EXPECT_TRUE(all_close(loss, r.loss, 1e-5)) << "chunk " << chunk;
    EXPECT_TRUE(all_close(dx, r.dx, 1e-5)) << "chunk " << chunk;
    EXPECT_TRUE(all_close(dWt, want_dWt, 1e-5)) << "chunk " << chunk;
  }
  std::vector<float> logits(size_t(N) * V), loss(N);
  uint16_t w16 = 0;
  loom::cpu::LmHeadScratch bf16{logits.data(), N, &w16, &w16, true};
  EXPECT_THROW(loom::cpu::lm_head_cross_entropy(t.x.data(), Wt.data(), t.labels.data(), nullptr, loss.data(), nullptr,
                                                nullptr, N, V, C, bf16),
               std::invalid_argument);
}

// bf16 GEMMs (--bf16): the loss equals the reference on the bf16-rounded x and W (products of bf16 values are
// exact; only fp32 summation differs); the gradients, formed from bf16-rounded logit gradients, are within
// bf16 precision of it, chunked or not, masked rows still zero.
TEST(KernelCrossEntropy, Bf16GemmsMatchReferenceOnRoundedOperands) {
  CeCase t(20);
  const int N = t.N, V = t.V, C = t.C;
  auto rounded = [](std::vector<float> v) {
    for (auto& x : v) x = loom::bf16_to_f32(loom::f32_to_bf16(x));
    return v;
  };
  const auto xr = rounded(t.x), Wr = rounded(t.W);
  CeRef r = ce_ref(loom::test::to_double(xr), loom::test::to_double(Wr), t.labels, loom::test::to_double(t.scale), N,
                   V, C);
  auto rel = [](const std::vector<float>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return std::sqrt(num / den);
  };
  for (int chunk : {8, 37}) {
    std::vector<float> logits(size_t(chunk) * V), loss(N), dx(size_t(N) * C, 123.0f), dW(size_t(V) * C, 0.0f);
    std::vector<uint16_t> w16(size_t(V) * C), x16(size_t(chunk) * C);
    loom::cpu::LmHeadScratch scratch{logits.data(), chunk};
    scratch.w16 = w16.data();
    scratch.x16 = x16.data();
    loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), t.scale.data(), loss.data(), dx.data(),
                                     dW.data(), N, V, C, scratch);
    EXPECT_TRUE(all_close(loss, r.loss, 1e-5)) << "chunk " << chunk;
    EXPECT_LT(rel(dx, r.dx), 1e-2) << "chunk " << chunk;
    EXPECT_LT(rel(dW, r.dW), 1e-2) << "chunk " << chunk;
    EXPECT_GT(rel(dW, r.dW), 1e-6) << "the logit gradients were not rounded to bf16";
    for (int c = 0; c < C; c++) EXPECT_EQ(dx[size_t(5) * C + c], 0.0f);
  }
}

TEST(KernelCrossEntropy, KernelFiniteDifferences) {
  CeCase t(20);
  const int N = t.N, V = t.V, C = t.C;
  std::vector<float> logits(size_t(16) * V), loss(N), dx(size_t(N) * C);
  std::vector<float> dW(size_t(V) * C, 0.0f);
  loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), t.scale.data(), loss.data(), dx.data(),
                                   dW.data(), N, V, C, {logits.data(), 16});
  auto total = [&]() {
    loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), nullptr, loss.data(), nullptr, nullptr,
                                     N, V, C, {logits.data(), 16});
    double s = 0;
    for (int i = 0; i < N; i++) s += double(t.scale[i]) * loss[i];
    return s;
  };
  const float h = 1e-2f;
  for (size_t i = 0; i < t.x.size(); i += 37) {
    const float s = t.x[i];
    t.x[i] = s + h;
    const double lp = total();
    t.x[i] = s - h;
    const double lm = total();
    t.x[i] = s;
    EXPECT_NEAR((lp - lm) / (2 * h), dx[i], 1e-2 * (std::fabs(dx[i]) + 0.01)) << i;
  }
  for (size_t i = 0; i < t.W.size(); i += 997) {
    const float s = t.W[i];
    t.W[i] = s + h;
    const double lp = total();
    t.W[i] = s - h;
    const double lm = total();
    t.W[i] = s;
    EXPECT_NEAR((lp - lm) / (2 * h), dW[i], 1e-2 * std::fabs(dW[i]) + 1e-3) << i;
  }
}

TEST(KernelCrossEntropy, LogitsAndSoftmaxRows) {
  const int N = 5, V = 301, C = 16;
  auto x = random_floats(N * C, 30), W = random_floats(size_t(V) * C, 31);
  std::vector<float> logits(size_t(N) * V);
  loom::cpu::lm_head_logits(x.data(), W.data(), logits.data(), N, V, C);
  std::vector<double> want(logits.size());
  for (int i = 0; i < N; i++)
    for (int v = 0; v < V; v++) {
      double s = 0;
      for (int c = 0; c < C; c++) s += double(x[i * C + c]) * W[size_t(v) * C + c];
      want[size_t(i) * V + v] = s;
    }
  EXPECT_TRUE(all_close(logits, want, 1e-6));
  for (int i = 0; i < N; i++) logits[size_t(i) * V + 3] += 50.0f;  // a dominant entry
  std::vector<double> sm(logits.size());
  for (int i = 0; i < N; i++) {
    double m = -1e300, s = 0;
    for (int v = 0; v < V; v++) m = std::max(m, double(logits[size_t(i) * V + v]));
    for (int v = 0; v < V; v++) s += std::exp(double(logits[size_t(i) * V + v]) - m);
    for (int v = 0; v < V; v++) sm[size_t(i) * V + v] = std::exp(double(logits[size_t(i) * V + v]) - m) / s;
  }
  loom::cpu::softmax_rows(logits.data(), N, V);
  EXPECT_TRUE(all_close(logits, sm, 1e-5));
}

TEST(KernelCrossEntropy, NonFiniteInputsGiveNaNLoss) {
  CeCase t(50);
  const int N = t.N, V = t.V, C = t.C;
  t.x[size_t(4) * C + 2] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> logits(size_t(8) * V), loss(N);
  loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), nullptr, loss.data(), nullptr, nullptr, N,
                                   V, C, {logits.data(), 8});
  EXPECT_TRUE(std::isnan(loss[4]));
  EXPECT_TRUE(std::isfinite(loss[5]));
}

// An in-process group of `size` ranks (threads) with blocking all-reduces.
class Group {
 public:
  explicit Group(int size) : size_(size) {}
  void all_reduce(float* v, int n, bool is_max) {
    std::unique_lock<std::mutex> lk(m_);
    const long gen = gen_;
    if (arrived_ == 0) {
      acc_.assign(v, v + n);
    } else {
      for (int i = 0; i < n; i++) acc_[size_t(i)] = is_max ? std::max(acc_[size_t(i)], v[i]) : acc_[size_t(i)] + v[i];
    }
    if (++arrived_ == size_) {
      arrived_ = 0;
      result_ = acc_;
      gen_++;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return gen_ != gen; });
    }
    std::copy(result_.begin(), result_.begin() + n, v);
  }

 private:
  int size_, arrived_ = 0;
  long gen_ = 0;
  std::vector<float> acc_, result_;
  std::mutex m_;
  std::condition_variable cv_;
};

TEST(KernelCrossEntropy, VocabularyParallelMatchesFullVocabulary) {
  CeCase t(60);
  const int N = t.N, V = t.V, C = t.C, split = 380, chunk = 8;
  t.labels[9] = split;  // labels on both sides of the boundary
  t.labels[10] = split - 1;
  std::vector<float> logits(size_t(chunk) * V), loss(N), dx(size_t(N) * C), dW(size_t(V) * C, 0.0f);
  loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), t.scale.data(), loss.data(), dx.data(),
                                   dW.data(), N, V, C, {logits.data(), chunk});
  Group group(2);
  std::vector<float> rloss[2], rdx[2], rdW[2];
  auto rank = [&](int r) {
    const int v0 = r == 0 ? 0 : split, nv = r == 0 ? split : V - split;
    std::vector<float> lg(size_t(chunk) * nv);
    rloss[r].assign(N, 0.0f);
    rdx[r].assign(size_t(N) * C, 0.0f);
    rdW[r].assign(size_t(nv) * C, 0.0f);
    loom::cpu::VocabParallel vp;
    vp.vocab_start = v0;
    vp.all_reduce_max = [&](float* v, int n) { group.all_reduce(v, n, true); };
    vp.all_reduce_sum = [&](float* v, int n) { group.all_reduce(v, n, false); };
    loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data() + size_t(v0) * C, t.labels.data(), t.scale.data(),
                                     rloss[r].data(), rdx[r].data(), rdW[r].data(), N, nv, C, {lg.data(), chunk}, &vp);
  };
  std::thread other(rank, 1);
  rank(0);
  other.join();
  EXPECT_TRUE(all_close(rloss[0], loom::test::to_double(loss), 1e-5));
  EXPECT_TRUE(loom::test::bitwise_equal(rloss[0], rloss[1]));
  std::vector<double> dxsum(dx.size());
  for (size_t i = 0; i < dx.size(); i++) dxsum[i] = double(rdx[0][i]) + rdx[1][i];
  EXPECT_TRUE(all_close(dx, dxsum, 1e-5));
  std::vector<float> dWcat = rdW[0];
  dWcat.insert(dWcat.end(), rdW[1].begin(), rdW[1].end());
  EXPECT_TRUE(all_close(dWcat, loom::test::to_double(dW), 1e-5));
}

TEST(KernelCrossEntropy, DeterministicAcrossThreadCounts) {
  CeCase t(40);
  const int N = t.N, V = t.V, C = t.C;
  std::vector<float> r[2][3];
  for (int th = 0; th < 2; th++) {
    loom::test::ScopedThreads threads(th + 1);
    std::vector<float> logits(size_t(16) * V), loss(N), dx(size_t(N) * C), dW(size_t(V) * C, 0.0f);
    loom::cpu::lm_head_cross_entropy(t.x.data(), t.W.data(), t.labels.data(), t.scale.data(), loss.data(), dx.data(),
                                     dW.data(), N, V, C, {logits.data(), 16});
    r[th][0] = loss;
    r[th][1] = dx;
    r[th][2] = dW;
  }
  for (int k = 0; k < 3; k++) EXPECT_TRUE(loom::test::bitwise_equal(r[0][k], r[1][k])) << k;
}

}  // namespace
