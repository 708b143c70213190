#include "loom/kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loom/kernels/cpu/parallel.h"
#include "loom/kernels/cpu/simd.h"
#include "loom/kernels/cpu/small_gemm.h"

namespace loom::cpu {

// All products go through detail::sgemm_small (register-blocked, single-threaded, no packing: the
// operands of one query block are cache resident). Where an operand is needed transposed, a transposed
// copy is made first: K^T for the scores, V^T for dP, and per block Q_blk^T and dO_blk^T so that the key
// gradients accumulate transposed (dK^T, dV^T: D x T per head) and are transposed back once per head.

namespace {

constexpr int kBlock = 64;  // query rows per block

inline int pad16(int n) { return (n + 15) & ~15; }

struct Head {
  long ldq, ldo;
  const float *q, *k, *v;  // row 0 of this (b, h) in qkv
  size_t qkv_off, o_off;
};

inline Head head(const float* qkv, const AttentionShape& s, long bh) {
  const int b = int(bh / s.H), h = int(bh % s.H);
  Head hd;
  hd.ldq = 3L * s.H * s.D;
  hd.ldo = long(s.H) * s.D;
  hd.qkv_off = size_t(b) * s.T * hd.ldq + size_t(h) * 3 * s.D;
  hd.o_off = size_t(b) * s.T * hd.ldo + size_t(h) * s.D;
  hd.q = qkv + hd.qkv_off;
  hd.k = hd.q + s.D;
  hd.v = hd.q + 2 * s.D;
  return hd;
}

// Stream index of dropout element (query q, key 0) of local head bh = b * H + h: the global head
// b * total_heads + head_offset + h indexes the mask.
inline uint64_t mask_index(const AttentionShape& s, long bh, int q) {
  const int total = s.total_heads > 0 ? s.total_heads : s.H;
  const uint64_t gh = uint64_t(bh / s.H) * uint64_t(total) + uint64_t(s.head_offset) + uint64_t(bh % s.H);
  return (gh * uint64_t(s.T) + uint64_t(q)) * uint64_t(s.T);
}

}  // namespace

void attention_forward(const float* qkv, float* out, float* lse, AttentionShape s, float dropout_p, uint64_t key) {
  const int B = s.B, T = s.T, H = s.H, D = s.D;
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
  const float scale = 1.0f / std::sqrt(float(D));
  const int nblk = (T + kBlock - 1) / kBlock;
  const long BH = long(B) * H;
  const long tasks = BH * nblk;
  const bool drop = dropout_p > 0.0f;
  const float dscale = detail::dropout_scale(dropout_p);
  const int lds = pad16(T);

  // Every query block is independent (it writes its own rows of out and lse); the largest (last) blocks
  // are handed out first for balance.
#pragma omp parallel for schedule(dynamic, 1)
  for (long t = 0; t < tasks; t++) {
    const int blk = nblk - 1 - int(t / BH);
    const long bh = t % BH;
    const Head hd = head(qkv, s, bh);
    const int r0 = blk * kBlock, r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
    float* S = detail::scratch_floats(size_t(kBlock) * lds, 0);
    float* KT = detail::scratch_floats(size_t(D) * lds, 1);
    float* mask = drop ? detail::scratch_floats(size_t(T), 2) : nullptr;

    detail::transpose(hd.k, hd.ldq, r1, D, KT, lds);
    detail::sgemm_small(rows, r1, D, scale, hd.q + size_t(r0) * hd.ldq, hd.ldq, KT, lds, 0.0f, S, lds);
    for (int i = 0; i < rows; i++) {
      const int qi = r0 + i, n = qi + 1;
      float* row = S + size_t(i) * lds;
      const int k0 = s.key_start ? s.key_start[(bh / s.H) * T + qi] : 0;  // keys before k0 are masked out
      const float m = detail::max_array(row + k0, n - k0);
      const float l = detail::exp_sub_sum<true>(row + k0, n - k0, m);
      if (k0) std::memset(row, 0, size_t(k0) * sizeof(float));
      lse[bh * T + qi] = m + std::log(l);
      const float inv = 1.0f / l;
      if (drop) {
        detail::dropout_scales(key, mask_index(s, bh, qi), n, dropout_p, dscale, mask);
#pragma omp simd
        for (int j = 0; j < n; j++) row[j] *= inv * mask[j];
      } else {
#pragma omp simd
        for (int j = 0; j < n; j++) row[j] *= inv;
      }
      if (r1 > n) std::memset(row + n, 0, size_t(r1 - n) * sizeof(float));
    }
    detail::sgemm_small(rows, D, r1, 1.0f, S, lds, hd.v, hd.ldq, 0.0f, out + hd.o_off + size_t(r0) * hd.ldo, hd.ldo);
  }
}

void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse, float* dqkv,
                        AttentionShape s, float dropout_p, uint64_t key) {
  const int B = s.B, T = s.T, H = s.H, D = s.D;
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
  const float scale = 1.0f / std::sqrt(float(D));
  const int nblk = (T + kBlock - 1) / kBlock;
  const long BH = long(B) * H;
  const bool drop = dropout_p > 0.0f;
  const float dscale = detail::dropout_scale(dropout_p);
  const int ldt = pad16(T);

  // One thread owns a whole head, so its dK and dV accumulate over the query blocks without races and
  // in a fixed order.
#pragma omp parallel for schedule(dynamic, 1)
  for (long bh = 0; bh < BH; bh++) {
    const Head hd = head(qkv, s, bh);
    const long ldq = hd.ldq, ldo = hd.ldo;
    float* dq = dqkv + hd.qkv_off;
    float* dk = dq + D;
    float* dv = dq + 2 * D;
    const float* dO = dout + hd.o_off;
    const float* O = out + hd.o_off;
    const float* L = lse + bh * T;

    // Per-thread scratch (grown once, reused): P, Y (dP / dS), X (dropout multipliers) blocks of
    // kBlock x T; K^T, V^T, dK^T, dV^T of D x T; Q_blk^T and dO_blk^T of D x kBlock; D_i.
    float* P = detail::scratch_floats(size_t(kBlock) * ldt * 3 + size_t(D) * ldt * 4, 0);
    float* Y = P + size_t(kBlock) * ldt;
    float* X = Y + size_t(kBlock) * ldt;
    float* KT = X + size_t(kBlock) * ldt;
    float* VT = KT + size_t(D) * ldt;
    float* dKT = VT + size_t(D) * ldt;
    float* dVT = dKT + size_t(D) * ldt;
    float* QbT = detail::scratch_floats(size_t(D) * kBlock * 2 + size_t(T), 1);
    float* dObT = QbT + size_t(D) * kBlock;
    float* Di = dObT + size_t(D) * kBlock;

    detail::transpose(hd.k, ldq, T, D, KT, ldt);
    detail::transpose(hd.v, ldq, T, D, VT, ldt);
    std::memset(dKT, 0, size_t(2) * D * ldt * sizeof(float));  // dKT and dVT
    for (int t = 0; t < T; t++) {
      const float* a = dO + size_t(t) * ldo;
      const float* o = O + size_t(t) * ldo;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int d = 0; d < D; d++) acc += a[d] * o[d];
      Di[t] = acc;
    }

    for (int blk = 0; blk < nblk; blk++) {
      const int r0 = blk * kBlock, r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
      const float* qb = hd.q + size_t(r0) * ldq;
      const float* dOb = dO + size_t(r0) * ldo;
      detail::transpose(qb, ldq, rows, D, QbT, kBlock);
      detail::transpose(dOb, ldo, rows, D, dObT, kBlock);
      // S = scale Q_blk K^T, then P = exp(S - lse) (the undropped probabilities), Pd = P * mask.
      detail::sgemm_small(rows, r1, D, scale, qb, ldq, KT, ldt, 0.0f, P, ldt);
      for (int i = 0; i < rows; i++) {
        const int qi = r0 + i, n = qi + 1;
        float* prow = P + size_t(i) * ldt;
        const int k0 = s.key_start ? s.key_start[(bh / s.H) * T + qi] : 0;
        detail::exp_sub_sum<true>(prow + k0, n - k0, L[qi]);
        if (k0) std::memset(prow, 0, size_t(k0) * sizeof(float));
        if (r1 > n) std::memset(prow + n, 0, size_t(r1 - n) * sizeof(float));
        if (drop) {
          float* xrow = X + size_t(i) * ldt;
          float* yrow = Y + size_t(i) * ldt;
          detail::dropout_scales(key, mask_index(s, bh, qi), n, dropout_p, dscale, xrow);
#pragma omp simd
          for (int j = 0; j < n; j++) yrow[j] = prow[j] * xrow[j];
          if (r1 > n) std::memset(yrow + n, 0, size_t(r1 - n) * sizeof(float));
        }
      }
      // dV^T[:, 0:r1] += dO_blk^T Pd
      detail::sgemm_small(D, r1, rows, 1.0f, dObT, kBlock, drop ? Y : P, ldt, 1.0f, dVT, ldt);
      // dPd = dO_blk V^T[:, 0:r1]
      detail::sgemm_small(rows, r1, D, 1.0f, dOb, ldo, VT, ldt, 0.0f, Y, ldt);
      // dS = P * (dPd * mask - D_i)
      for (int i = 0; i < rows; i++) {
        const int qi = r0 + i, n = qi + 1;
        const float* prow = P + size_t(i) * ldt;
        float* yrow = Y + size_t(i) * ldt;
        const float di = Di[qi];
        if (drop) {
          const float* xrow = X + size_t(i) * ldt;
#pragma omp simd
          for (int j = 0; j < n; j++) yrow[j] = prow[j] * (yrow[j] * xrow[j] - di);
        } else {
#pragma omp simd
          for (int j = 0; j < n; j++) yrow[j] = prow[j] * (yrow[j] - di);
        }
        if (r1 > n) std::memset(yrow + n, 0, size_t(r1 - n) * sizeof(float));
      }
      // dQ_blk = scale dS K[0:r1];  dK^T[:, 0:r1] += scale Q_blk^T dS
      detail::sgemm_small(rows, D, r1, scale, Y, ldt, hd.k, ldq, 0.0f, dq + size_t(r0) * ldq, ldq);
      detail::sgemm_small(D, r1, rows, scale, QbT, kBlock, Y, ldt, 1.0f, dKT, ldt);
    }
    detail::transpose(dKT, ldt, D, T, dk, ldq);
    detail::transpose(dVT, ldt, D, T, dv, ldq);
  }
}

}  // namespace loom::cpu
