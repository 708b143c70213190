#include "loom/kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

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

// Where the heads live. Query head h of sample b: q + b*T*ldq + (h / hpg) * q_gstride + (h % hpg) * D;
// its key/value group g = h / hpg: k (v) + b*Tk*ldkv + g * kv_gstride. Gradients (dq, dk, dv) have the
// layout of their operands. out is [B*T, H*D], head h at columns h*D; lse is [B, H, T].
struct Operands {
  const float* q;
  long ldq, q_gstride;
  const float *k, *v;
  long ldkv, kv_gstride;
  int Tk, hpg;  // keys per sample, query heads per key/value group
};

struct Head {
  size_t q_off, kv_off, o_off;  // row 0 of this (b, h) in q (and dq), k/v (and dk/dv), out (and dout)
};

inline Head head(const Operands& op, const AttentionShape& s, long bh) {
  const int b = int(bh / s.H), h = int(bh % s.H);
  Head hd;
  hd.q_off = size_t(b) * s.T * op.ldq + size_t(h / op.hpg) * op.q_gstride + size_t(h % op.hpg) * s.D;
  hd.kv_off = size_t(b) * op.Tk * op.ldkv + size_t(h / op.hpg) * op.kv_gstride;
  hd.o_off = size_t(b) * s.T * s.H * s.D + size_t(h) * s.D;
  return hd;
}

// Stream index of dropout element (query q, key 0) of local query head bh = b * H + h: the global head
// b * total_heads + head_offset + h indexes the mask, ((gh * T + q) * Tk + key).
inline uint64_t mask_index(const AttentionShape& s, long bh, int q, int Tk) {
  const int total = s.total_heads > 0 ? s.total_heads : s.H;
  const uint64_t gh = uint64_t(bh / s.H) * uint64_t(total) + uint64_t(s.head_offset) + uint64_t(bh % s.H);
  return (gh * uint64_t(s.T) + uint64_t(q)) * uint64_t(Tk);
}

int groups_of(const AttentionShape& s) {
  const int G = s.groups > 0 ? s.groups : s.H;
  if (s.H % G != 0) throw std::invalid_argument("attention: query heads must be a multiple of the key/value groups");
  return G;
}

void check(const AttentionShape& s, int Tk) {
  if (s.causal && Tk != s.T) throw std::invalid_argument("attention: causal attention needs as many keys as queries");
  if (!s.causal && s.key_start) throw std::invalid_argument("attention: key_start (document masks) needs causal");
}

// The fused QKV activation in Megatron's layout: G groups per row, each H/G query heads then k then v.
Operands fused(const float* qkv, const AttentionShape& s) {
  const int G = groups_of(s), hpg = s.H / G;
  const long ld = long(s.H + 2 * G) * s.D, gs = long(hpg + 2) * s.D;
  return {qkv, ld, gs, qkv + size_t(hpg) * s.D, qkv + size_t(hpg + 1) * s.D, ld, gs, s.T, hpg};
}

// Separate q [B*T, ldq] (head h at columns h*D) and k, v [B*Tk, ldkv] (group g at columns g*D).
Operands separate(const float* q, long ldq, const float* k, const float* v, long ldkv, const AttentionShape& s,
                  int Tk) {
  const int G = groups_of(s), hpg = s.H / G;
  return {q, ldq, long(hpg) * s.D, k, v, ldkv, long(s.D), Tk, hpg};
}

void forward_impl(const Operands& op, float* out, float* lse, const AttentionShape& s, float dropout_p, uint64_t key) {
  const int B = s.B, T = s.T, H = s.H, D = s.D, Tk = op.Tk;
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0 || Tk <= 0) return;
  const bool causal = s.causal;
  const float scale = 1.0f / std::sqrt(float(D));
  const int nblk = (T + kBlock - 1) / kBlock;
  const long BH = long(B) * H;
  const long tasks = BH * nblk;
  const bool drop = dropout_p > 0.0f;
  const float dscale = detail::dropout_scale(dropout_p);
  const int lds = pad16(Tk);
  const long ldo = long(H) * D;

  // Every query block is independent (it writes its own rows of out and lse); the largest (last) blocks
  // are handed out first for balance.
#pragma omp parallel for schedule(dynamic, 1)
  for (long t = 0; t < tasks; t++) {
    const int blk = nblk - 1 - int(t / BH);
    const long bh = t % BH;
    const Head hd = head(op, s, bh);
    const float* q = op.q + hd.q_off;
    const int r0 = blk * kBlock, r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
    const int kend = causal ? r1 : Tk;  // keys any query of the block sees
    float* S = detail::scratch_floats(size_t(kBlock) * lds, 0);
    float* KT = detail::scratch_floats(size_t(D) * lds, 1);
    float* mask = drop ? detail::scratch_floats(size_t(Tk), 2) : nullptr;

    detail::transpose(op.k + hd.kv_off, op.ldkv, kend, D, KT, lds);
    detail::sgemm_small(rows, kend, D, scale, q + size_t(r0) * op.ldq, op.ldq, KT, lds, 0.0f, S, lds);
    for (int i = 0; i < rows; i++) {
      const int qi = r0 + i, n = causal ? qi + 1 : Tk;
      float* row = S + size_t(i) * lds;
      const int k0 = s.key_start ? s.key_start[(bh / H) * T + qi] : 0;  // keys before k0 are masked out
      const float m = detail::max_array(row + k0, n - k0);
      const float l = detail::exp_sub_sum<true>(row + k0, n - k0, m);
      if (k0) std::memset(row, 0, size_t(k0) * sizeof(float));
      lse[bh * T + qi] = m + std::log(l);
      const float inv = 1.0f / l;
      if (drop) {
        detail::dropout_scales(key, mask_index(s, bh, qi, Tk), n, dropout_p, dscale, mask);
#pragma omp simd
        for (int j = 0; j < n; j++) row[j] *= inv * mask[j];
      } else {
#pragma omp simd
        for (int j = 0; j < n; j++) row[j] *= inv;
      }
      if (kend > n) std::memset(row + n, 0, size_t(kend - n) * sizeof(float));
    }
    detail::sgemm_small(rows, D, kend, 1.0f, S, lds, op.v + hd.kv_off, op.ldkv, 0.0f, out + hd.o_off + size_t(r0) * ldo,
                        ldo);
  }
}

void backward_impl(const float* dout, const Operands& op, const float* out, const float* lse, float* dq_base,
                   float* dk_base, float* dv_base, const AttentionShape& s, float dropout_p, uint64_t key) {
  const int B = s.B, T = s.T, H = s.H, D = s.D, Tk = op.Tk, hpg = op.hpg;
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0 || Tk <= 0) return;
  const bool causal = s.causal;
  const float scale = 1.0f / std::sqrt(float(D));
  const int nblk = (T + kBlock - 1) / kBlock;
  const long BG = long(B) * (H / hpg);
  const bool drop = dropout_p > 0.0f;
  const float dscale = detail::dropout_scale(dropout_p);
  const int ldt = pad16(Tk);
  const long ldq = op.ldq, ldo = long(H) * D;

  // One thread owns a whole key/value group (one head for MHA): its dK and dV accumulate over the
  // group's query heads (in head order) and their query blocks without races and in a fixed order.
#pragma omp parallel for schedule(dynamic, 1)
  for (long bg = 0; bg < BG; bg++) {
    const long bh0 = (bg / (H / hpg)) * H + (bg % (H / hpg)) * hpg;  // first query head of the group
    const size_t kv_off = head(op, s, bh0).kv_off;
    const float* K = op.k + kv_off;
    const float* V = op.v + kv_off;

    // Per-thread scratch (grown once, reused): P, Y (dP / dS), X (dropout multipliers) blocks of
    // kBlock x Tk; K^T, V^T, dK^T, dV^T of D x Tk; Q_blk^T and dO_blk^T of D x kBlock; D_i.
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

    detail::transpose(K, op.ldkv, Tk, D, KT, ldt);
    detail::transpose(V, op.ldkv, Tk, D, VT, ldt);
    std::memset(dKT, 0, size_t(2) * D * ldt * sizeof(float));  // dKT and dVT
    for (int j = 0; j < hpg; j++) {
      const long bh = bh0 + j;
      const Head hd = head(op, s, bh);
      const float* Q = op.q + hd.q_off;
      float* dq = dq_base + hd.q_off;
      const float* dO = dout + hd.o_off;
      const float* O = out + hd.o_off;
      const float* L = lse + bh * T;
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
        const int kend = causal ? r1 : Tk;
        const float* qb = Q + size_t(r0) * ldq;
        const float* dOb = dO + size_t(r0) * ldo;
        detail::transpose(qb, ldq, rows, D, QbT, kBlock);
        detail::transpose(dOb, ldo, rows, D, dObT, kBlock);
        // S = scale Q_blk K^T, then P = exp(S - lse) (the undropped probabilities), Pd = P * mask.
        detail::sgemm_small(rows, kend, D, scale, qb, ldq, KT, ldt, 0.0f, P, ldt);
        for (int i = 0; i < rows; i++) {
          const int qi = r0 + i, n = causal ? qi + 1 : Tk;
          float* prow = P + size_t(i) * ldt;
          const int k0 = s.key_start ? s.key_start[(bh / H) * T + qi] : 0;
          detail::exp_sub_sum<true>(prow + k0, n - k0, L[qi]);
          if (k0) std::memset(prow, 0, size_t(k0) * sizeof(float));
          if (kend > n) std::memset(prow + n, 0, size_t(kend - n) * sizeof(float));
          if (drop) {
            float* xrow = X + size_t(i) * ldt;
            float* yrow = Y + size_t(i) * ldt;
            detail::dropout_scales(key, mask_index(s, bh, qi, Tk), n, dropout_p, dscale, xrow);
#pragma omp simd
            for (int j2 = 0; j2 < n; j2++) yrow[j2] = prow[j2] * xrow[j2];
            if (kend > n) std::memset(yrow + n, 0, size_t(kend - n) * sizeof(float));
          }
        }
        // dV^T[:, 0:kend] += dO_blk^T Pd
        detail::sgemm_small(D, kend, rows, 1.0f, dObT, kBlock, drop ? Y : P, ldt, 1.0f, dVT, ldt);
        // dPd = dO_blk V^T[:, 0:kend]
        detail::sgemm_small(rows, kend, D, 1.0f, dOb, ldo, VT, ldt, 0.0f, Y, ldt);
        // dS = P * (dPd * mask - D_i)
        for (int i = 0; i < rows; i++) {
          const int qi = r0 + i, n = causal ? qi + 1 : Tk;
          const float* prow = P + size_t(i) * ldt;
          float* yrow = Y + size_t(i) * ldt;
          const float di = Di[qi];
          if (drop) {
            const float* xrow = X + size_t(i) * ldt;
#pragma omp simd
            for (int j2 = 0; j2 < n; j2++) yrow[j2] = prow[j2] * (yrow[j2] * xrow[j2] - di);
          } else {
#pragma omp simd
            for (int j2 = 0; j2 < n; j2++) yrow[j2] = prow[j2] * (yrow[j2] - di);
          }
          if (kend > n) std::memset(yrow + n, 0, size_t(kend - n) * sizeof(float));
        }
        // dQ_blk = scale dS K[0:kend];  dK^T[:, 0:kend] += scale Q_blk^T dS
        detail::sgemm_small(rows, D, kend, scale, Y, ldt, K, op.ldkv, 0.0f, dq + size_t(r0) * ldq, ldq);
        detail::sgemm_small(D, kend, rows, scale, QbT, kBlock, Y, ldt, 1.0f, dKT, ldt);
      }
    }
    detail::transpose(dKT, ldt, D, Tk, dk_base + kv_off, op.ldkv);
    detail::transpose(dVT, ldt, D, Tk, dv_base + kv_off, op.ldkv);
  }
}

}  // namespace

void attention_forward(const float* qkv, float* out, float* lse, AttentionShape s, float dropout_p, uint64_t key) {
  check(s, s.T);
  forward_impl(fused(qkv, s), out, lse, s, dropout_p, key);
}

void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse, float* dqkv,
                        AttentionShape s, float dropout_p, uint64_t key) {
  check(s, s.T);
  const Operands op = fused(qkv, s);
  const size_t k_at = size_t(op.k - qkv), v_at = size_t(op.v - qkv);
  backward_impl(dout, op, out, lse, dqkv, dqkv + k_at, dqkv + v_at, s, dropout_p, key);
}

void attention_forward_qkv(const float* q, long ldq, const float* k, const float* v, long ldkv, float* out, float* lse,
                           AttentionShape s, int Tk, float dropout_p, uint64_t key) {
  check(s, Tk);
  forward_impl(separate(q, ldq, k, v, ldkv, s, Tk), out, lse, s, dropout_p, key);
}

void attention_backward_qkv(const float* dout, const float* q, long ldq, const float* k, const float* v, long ldkv,
                            const float* out, const float* lse, float* dq, float* dk, float* dv, AttentionShape s,
                            int Tk, float dropout_p, uint64_t key) {
  check(s, Tk);
  backward_impl(dout, separate(q, ldq, k, v, ldkv, s, Tk), out, lse, dq, dk, dv, s, dropout_p, key);
}

}  // namespace loom::cpu
