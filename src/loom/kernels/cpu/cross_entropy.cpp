#include "loom/kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/gemm_bf16.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/kernels/cpu/parallel.h"
#include "loom/kernels/cpu/simd.h"

namespace loom::cpu {

void lm_head_cross_entropy(const float* x, const float* W, const int32_t* labels, const float* row_scale,
                           float* loss, float* dx, float* dW, int N, int V, int C, LmHeadScratch scratch,
                           const VocabParallel* vp) {
  if (N <= 0 || V <= 0) return;
  const int chunk = std::max(1, std::min(scratch.chunk_rows, N));
  const int v0 = vp ? vp->vocab_start : 0;  // global id of this shard's first row of W
  float* L = scratch.logits;
  const bool grad = dx != nullptr;
  // Per-row statistics of a chunk: max, sum of exponentials, target logit (grown once, reused).
  float* stat = detail::scratch_floats(size_t(3) * chunk, 0);
  float* mx = stat;
  float* sums = stat + chunk;  // sums[i] and, right after the sums, the target logits
  float* tgt = stat + 2 * chunk;
  const bool bf16 = scratch.w16 != nullptr || scratch.w16_stored != nullptr;
  const bool wt = scratch.w_transposed;
  if (wt && bf16) throw std::invalid_argument("lm_head_cross_entropy: a transposed W takes fp32 GEMMs");
  if (scratch.keep && wt) throw std::invalid_argument("lm_head_cross_entropy: kept gradients take an untransposed W");
  const uint16_t* w16 = scratch.w16_stored ? scratch.w16_stored : scratch.w16;
  if (bf16 && !scratch.w16_stored) to_bf16_rows(W, V, C, C, scratch.w16);  // once per call, shared by every chunk
  for (int n0 = 0; n0 < N; n0 += chunk) {
    const int rows = std::min(chunk, N - n0);
    const float* xc = x + size_t(n0) * C;
    if (scratch.keep) L = scratch.keep + size_t(n0) * V;
    if (bf16) {
      to_bf16_rows(xc, rows, C, C, scratch.x16);
      gemm_bf16(false, true, rows, V, C, 1.0f, scratch.x16, C, w16, C, 0.0f, L, V);
    } else if (wt) {
      gemm(false, false, rows, V, C, 1.0f, xc, C, W, V, 0.0f, L, V);
    } else {
      gemm(false, true, rows, V, C, 1.0f, xc, C, W, C, 0.0f, L, V);
    }
    // Per row: its maximum and target logit; its exponentials (kept for the gradient) and their sum; its
    // loss and gradient. A vocabulary shard combines each step over the group before the next, so it
    // makes three passes over the chunk; a whole vocabulary finishes each row while it is in cache (one
    // pass from memory instead of three: 512 x 50304 logits are 103 MB). The same arithmetic per row
    // either way, so the same bits.
    auto stats = [&](int i) {
      const float* row = L + size_t(i) * V;
      const int32_t lab = labels[n0 + i] - v0;
      mx[i] = detail::max_array(row, V);
      tgt[i] = lab >= 0 && lab < V ? row[lab] : 0.0f;
    };
    auto exps = [&](int i) {
      float* row = L + size_t(i) * V;
      sums[i] = grad ? detail::exp_sub_sum<true>(row, V, mx[i]) : detail::exp_sub_sum<false>(row, V, mx[i]);
    };
    auto finish = [&](int i) {
      const int r = n0 + i;
      const int32_t label = labels[r];
      loss[r] = label >= 0 ? (mx[i] + std::log(sums[i])) - tgt[i] : 0.0f;
      if (!grad) return;
      float* row = L + size_t(i) * V;
      const float rs = label >= 0 ? (row_scale ? row_scale[r] : 1.0f) : 0.0f;
      if (rs == 0.0f) {
        std::memset(row, 0, size_t(V) * sizeof(float));
      } else {
        const float f = rs / sums[i];
#pragma omp simd
        for (int j = 0; j < V; j++) row[j] *= f;
        const int32_t lab = label - v0;
        if (lab >= 0 && lab < V) row[lab] -= rs;
      }
      // bf16: the row narrowed in place, while it is in cache (a bf16 matrix with row stride 2V).
      if (bf16) from_f32_in_place(row, DType::BF16, V);
    };
    if (!vp) {
#pragma omp parallel for schedule(static) if (rows > 1)
      for (int i = 0; i < rows; i++) stats(i), exps(i), finish(i);
    } else {
#pragma omp parallel for schedule(static) if (rows > 1)
      for (int i = 0; i < rows; i++) stats(i);
      vp->all_reduce_max(mx, rows);
#pragma omp parallel for schedule(static) if (rows > 1)
      for (int i = 0; i < rows; i++) exps(i);
      // One collective for both: the sums are followed by the target logits in `stat`.
      if (rows < chunk) std::memmove(sums + rows, tgt, size_t(rows) * sizeof(float));
      vp->all_reduce_sum(sums, 2 * rows);
      if (rows < chunk) std::memmove(tgt, sums + rows, size_t(rows) * sizeof(float));
#pragma omp parallel for schedule(static) if (rows > 1)
      for (int i = 0; i < rows; i++) finish(i);
    }
    if (grad && bf16) {
      const uint16_t* L16 = reinterpret_cast<const uint16_t*>(L);
      gemm_bf16(false, false, rows, C, V, 1.0f, L16, 2 * V, w16, C, 0.0f, dx + size_t(n0) * C, C);
      if (dW) gemm_bf16(true, false, V, C, rows, 1.0f, L16, 2 * V, scratch.x16, C, 1.0f, dW, C);
    } else if (grad && wt) {
      gemm(false, true, rows, C, V, 1.0f, L, V, W, V, 0.0f, dx + size_t(n0) * C, C);
      gemm(true, false, C, V, rows, 1.0f, xc, C, L, V, 1.0f, dW, V);
    } else if (grad) {
      gemm(false, false, rows, C, V, 1.0f, L, V, W, C, 0.0f, dx + size_t(n0) * C, C);
      if (dW) gemm(true, false, V, C, rows, 1.0f, L, V, xc, C, 1.0f, dW, C);
    }
  }
}

void lm_head_weight_grad(const float* x, const float* dlogits, float* dW, int N, int V, int C, int chunk_rows) {
  if (N <= 0 || V <= 0) return;
  const int chunk = std::max(1, std::min(chunk_rows, N));
  for (int n0 = 0; n0 < N; n0 += chunk) {
    const int rows = std::min(chunk, N - n0);
    gemm(true, false, V, C, rows, 1.0f, dlogits + size_t(n0) * V, V, x + size_t(n0) * C, C, 1.0f, dW, C);
  }
}

void lm_head_weight_grad_bf16(const float* x, const float* dlogits, float* dW, int N, int V, int C, int chunk_rows,
                              uint16_t* x16) {
  if (N <= 0 || V <= 0) return;
  const int chunk = std::max(1, std::min(chunk_rows, N));
  for (int n0 = 0; n0 < N; n0 += chunk) {
    const int rows = std::min(chunk, N - n0);
    to_bf16_rows(x + size_t(n0) * C, rows, C, C, x16);  // as the fused call rounded this chunk
    const uint16_t* L16 = reinterpret_cast<const uint16_t*>(dlogits + size_t(n0) * V);
    gemm_bf16(true, false, V, C, rows, 1.0f, L16, 2 * V, x16, C, 1.0f, dW, C);
  }
}

void lm_head_logits(const float* x, const float* W, float* logits, int N, int V, int C) {
  gemm(false, true, N, V, C, 1.0f, x, C, W, C, 0.0f, logits, V);
}

void softmax_rows(float* x, int N, int V) {
  if (N <= 0 || V <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(N) * V * 4))
  for (int r = 0; r < N; r++) {
    float* row = x + size_t(r) * V;
    const float m = detail::max_array(row, V);
    const float inv = 1.0f / detail::exp_sub_sum<true>(row, V, m);
#pragma omp simd
    for (int j = 0; j < V; j++) row[j] *= inv;
  }
}

}  // namespace loom::cpu
