#include "loom/models/coca/clip_loss.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "loom/core/error.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/parallel.h"
#include "loom/kernels/cpu/simd.h"

namespace loom {

namespace {

// F.normalize(x, dim=-1, eps): y = x / max(|x|, eps). The norm is summed in double (sequentially, so the
// value does not depend on threads) and rounded once; returns |x| (unclamped) for the backward.
float normalize_row(const float* x, float* y, int E, float eps) {
  double ss = 0;
  for (int k = 0; k < E; k++) ss += double(x[k]) * double(x[k]);
  const float norm = float(std::sqrt(ss));
  const float n = std::max(norm, eps);
  for (int k = 0; k < E; k++) y[k] = x[k] / n;
  return norm;
}

// Backward of y = x / max(|x|, eps) given y and norm = |x|. torch's clamp_min passes the gradient on where
// norm >= eps, then dx = (dy - y (y . dy)) / norm; below eps the denominator is the constant eps.
void normalize_row_backward(const float* y, const float* dy, float norm, float eps, float* dx, int E) {
  if (!(norm >= eps)) {
    for (int k = 0; k < E; k++) dx[k] = dy[k] / eps;
    return;
  }
  double dot = 0;
  for (int k = 0; k < E; k++) dot += double(y[k]) * double(dy[k]);
  const float d = float(dot);
  for (int k = 0; k < E; k++) dx[k] = (dy[k] - y[k] * d) / norm;
}

}  // namespace

ClipLoss::ClipLoss(dist::Communicator* dp, int max_batch, int embed_dim)
    : dp_(dp && dp->size() > 1 ? dp : nullptr),
      R_(dp ? dp->size() : 1),
      rank_(dp ? dp->rank() : 0),
      max_batch_(max_batch),
      E_(embed_dim) {
  require(max_batch > 0 && embed_dim > 0, "ClipLoss: max_batch and embed_dim must be positive");
  const size_t rows = size_t(max_batch), all_rows = size_t(R_) * rows, w = 2 * size_t(E_);
  local_.assign(rows * w, 0.0f);
  norms_.assign(rows * 2, 0.0f);
  if (R_ > 1) gathered_.assign(all_rows * w, 0.0f);
  p_i2t_.assign(rows * all_rows, 0.0f);
  p_t2i_.assign(rows * all_rows, 0.0f);
  d_gathered_.assign(all_rows * w, 0.0f);
  if (R_ > 1) d_reduced_.assign(rows * w, 0.0f);
  d_direct_.assign(rows * w, 0.0f);
  row_loss_.assign(2 * rows, 0.0);
  row_hit_.assign(2 * rows, 0);
}

void ClipLoss::softmax_ce(float* logits, int b, double* row_loss, uint8_t* row_hit) const {
  const int N = R_ * b;
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(b) * N))
  for (int i = 0; i < b; i++) {
    float* row = logits + size_t(i) * N;
    const int label = rank_ * b + i;
    // torch.argmax: the first maximum, NaN counting as the largest value.
    int arg = 0;
    for (int j = 1; j < N; j++) {
      if (std::isnan(row[arg])) break;
      if (std::isnan(row[j]) || row[j] > row[arg]) arg = j;
    }
    row_hit[i] = arg == label;
    const float m = cpu::detail::max_array(row, N);
    const float target = row[label];
    const float sum = cpu::detail::exp_sub_sum<true>(row, N, m);
    row_loss[i] = (double(m) + std::log(double(sum))) - double(target);
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < N; j++) row[j] *= inv;
  }
}

ClipLossStats ClipLoss::forward(const float* image_latent, const float* text_latent, float logit_scale_param,
                                int b) {
  // Checked with `if` so that the message is only built on failure (no allocation in the step).
  if (b <= 0 || b > max_batch_)
    fail("ClipLoss: local batch " + std::to_string(b) + " outside [1, " + std::to_string(max_batch_) + "]");
  b_ = b;
  const int E = E_, W = 2 * E, N = R_ * b;
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(b) * W))
  for (int i = 0; i < b; i++) {
    float* row = local_.data() + size_t(i) * W;
    norms_[2 * size_t(i)] = normalize_row(image_latent + size_t(i) * E, row, E, kNormEps);
    norms_[2 * size_t(i) + 1] = normalize_row(text_latent + size_t(i) * E, row + E, E, kNormEps);
  }
  const float* all = local_.data();
  if (dp_) {
    dp_->all_gather(local_.data(), gathered_.data(), size_t(b) * W);
    all = gathered_.data();
  }
  scale_ = std::exp(logit_scale_param);
  // logits_i2t = s * u @ V^T (V: the text half of every gathered row), logits_t2i = s * v @ U^T.
  cpu::gemm(false, true, b, N, E, scale_, local_.data(), W, all + E, W, 0.0f, p_i2t_.data(), N);
  cpu::gemm(false, true, b, N, E, scale_, local_.data() + E, W, all, W, 0.0f, p_t2i_.data(), N);
  softmax_ce(p_i2t_.data(), b, row_loss_.data(), row_hit_.data());
  softmax_ce(p_t2i_.data(), b, row_loss_.data() + b, row_hit_.data() + b);

  double li = 0, lt = 0;
  int hi = 0, ht = 0;
  for (int i = 0; i < b; i++) {
    li += row_loss_[size_t(i)];
    lt += row_loss_[size_t(b + i)];
    hi += row_hit_[size_t(i)];
    ht += row_hit_[size_t(b + i)];
  }
  ClipLossStats st;
  st.loss_i2t = float(li / b);
  st.loss_t2i = float(lt / b);
  st.loss = float((li / b + lt / b) / 2);
  st.i2t_acc = float(double(hi) / b);
  st.t2i_acc = float(double(ht) / b);
  st.logit_scale = scale_;
  have_forward_ = true;
  return st;
}

void ClipLoss::backward(float grad_scale, float* d_image_latent, float* d_text_latent,
                        float* d_logit_scale_param) {
  if (!have_forward_) fail("ClipLoss: backward without a forward");
  have_forward_ = false;
  const int b = b_, E = E_, W = 2 * E, N = R_ * b;
  // d logits = (softmax - onehot) * grad_scale / (2b): the mean over b rows, halved for the two terms.
  const float c = grad_scale / float(2 * b);
  for (float* P : {p_i2t_.data(), p_t2i_.data()}) {
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(b) * N))
    for (int i = 0; i < b; i++) {
      float* row = P + size_t(i) * N;
#pragma omp simd
      for (int j = 0; j < N; j++) row[j] *= c;
      row[rank_ * b + i] -= c;
    }
  }
  const float* all = dp_ ? gathered_.data() : local_.data();
  const float s = scale_;
  // Gradients for the gathered rows: dU = s * dlogits_t2i^T @ v, dV = s * dlogits_i2t^T @ u.
  cpu::gemm(true, false, N, E, b, s, p_t2i_.data(), N, local_.data() + E, W, 0.0f, d_gathered_.data(), W);
  cpu::gemm(true, false, N, E, b, s, p_i2t_.data(), N, local_.data(), W, 0.0f, d_gathered_.data() + E, W);
  // The all-gather's backward: every rank's gradient for this rank's rows, summed (reduce-scatter), while
  // the gradients through the local operand are computed.
  dist::Request pending;
  if (dp_) pending = dp_->ireduce_scatter(d_gathered_.data(), d_reduced_.data(), size_t(b) * W, dist::DType::F32);
  // du = s * dlogits_i2t @ V, dv = s * dlogits_t2i @ U.
  cpu::gemm(false, false, b, E, N, s, p_i2t_.data(), N, all + E, W, 0.0f, d_direct_.data(), W);
  cpu::gemm(false, false, b, E, N, s, p_t2i_.data(), N, all, W, 0.0f, d_direct_.data() + E, W);
  // d param = s * d s = sum_ij dlogits_ij * logits_ij = sum_i (u_i . du_i + v_i . dv_i), du/dv being the
  // local-operand gradients above (logits = s * u . V_j, so sum_j dlogits_ij * logits_ij = u_i . du_i).
  double d_param = 0;
  for (int i = 0; i < b; i++) {
    const float* u = local_.data() + size_t(i) * W;
    const float* g = d_direct_.data() + size_t(i) * W;
    for (int k = 0; k < W; k++) d_param += double(u[k]) * double(g[k]);
  }
  *d_logit_scale_param += float(d_param);
  const float* reduced = d_gathered_.data();  // one process: this rank's block is the whole buffer
  if (dp_) {
    pending.wait();
    reduced = d_reduced_.data();
  }
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(b) * W))
  for (int i = 0; i < b; i++) {
    float* g = d_direct_.data() + size_t(i) * W;
    const float* r = reduced + size_t(i) * W;
    for (int k = 0; k < W; k++) g[k] += r[k];
    const float* y = local_.data() + size_t(i) * W;
    normalize_row_backward(y, g, norms_[2 * size_t(i)], kNormEps, d_image_latent + size_t(i) * E, E);
    normalize_row_backward(y + E, g + E, norms_[2 * size_t(i) + 1], kNormEps, d_text_latent + size_t(i) * E, E);
  }
}

}  // namespace loom
