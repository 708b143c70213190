#include "loom/layers/cross_attention.h"

#include <stdexcept>

#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/gemm.h"

namespace loom {

namespace {

const float* ptr(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }
float* mptr(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }

// k and v as one [2*H*D, in] GEMM when they are adjacent rows of one weight (a packed in_proj), so the
// context is read once; else two GEMMs into the halves of each kv row.
bool adjacent(const Tensor& a, const Tensor& b) { return a.defined() && b.defined() && a.f32() + a.numel() == b.f32(); }

}  // namespace

CrossAttention::Saved CrossAttention::make_saved(int64_t rows, int64_t ctx_rows, bool self) const {
  const int64_t hd = width();
  Saved s;
  s.q = Tensor({rows, self ? 3 * hd : hd});
  if (!self) s.kv = Tensor({ctx_rows, 2 * hd});
  s.core = Tensor({rows, hd});
  s.lse = Tensor({rows * heads_});
  return s;
}

CrossAttention::Scratch CrossAttention::make_scratch(int64_t rows, int64_t ctx_rows, bool self) const {
  const int64_t hd = width();
  Scratch s;
  s.dq = Tensor({rows, self ? 3 * hd : hd});
  if (!self) s.dkv = Tensor({ctx_rows, 2 * hd});
  s.dcore = Tensor({rows, hd});
  return s;
}

void CrossAttention::forward(const AttentionProjections& w, const float* x, const float* ctx, int B, int T, int Tk,
                             float* y, Saved& s) const {
  const int hd = width(), in_c = int(w.k.weight.dim(1));
  const int Nq = B * T, Nk = B * Tk;
  linear_forward(w.q, x, s.q.f32(), Nq);
  float* kv = s.kv.f32();
  if (adjacent(w.k.weight, w.v.weight)) {
    cpu::gemm(false, true, Nk, 2 * hd, in_c, 1.f, ctx, in_c, w.k.weight.f32(), in_c, 0.f, kv, 2 * hd);
  } else {
    cpu::gemm(false, true, Nk, hd, in_c, 1.f, ctx, in_c, w.k.weight.f32(), in_c, 0.f, kv, 2 * hd);
    cpu::gemm(false, true, Nk, hd, in_c, 1.f, ctx, in_c, w.v.weight.f32(), in_c, 0.f, kv + hd, 2 * hd);
  }
  if (adjacent(w.k.bias, w.v.bias)) {
    cpu::add_bias(kv, w.k.bias.f32(), Nk, 2 * hd);
  } else {
    const float* bk = ptr(w.k.bias);
    const float* bv = ptr(w.v.bias);
    for (int r = 0; r < Nk; r++) {
      float* row = kv + size_t(r) * 2 * hd;
      if (bk)
        for (int c = 0; c < hd; c++) row[c] += bk[c];
      if (bv)
        for (int c = 0; c < hd; c++) row[hd + c] += bv[c];
    }
  }
  cpu::AttentionShape shape{B, T, heads_, head_dim_};
  shape.causal = causal_;
  cpu::attention_forward_qkv(s.q.f32(), hd, kv, kv + hd, 2 * hd, s.core.f32(), s.lse.f32(), shape, Tk, 0.f, 0);
  linear_forward(w.out, s.core.f32(), y, Nq);
}

void CrossAttention::backward(const AttentionProjections& w, const float* dy, const float* x, const float* ctx, int B,
                              int T, int Tk, float* dx, float* dctx, const Saved& s, Scratch& sc,
                              bool accumulate_dctx) const {
  const int hd = width(), in_c = int(w.k.weight.dim(1));
  const int Nq = B * T, Nk = B * Tk;
  linear_backward(w.out, dy, s.core.f32(), sc.dcore.f32(), Nq);
  cpu::AttentionShape shape{B, T, heads_, head_dim_};
  shape.causal = causal_;
  const float* kv = s.kv.f32();
  float* dkv = sc.dkv.f32();
  cpu::attention_backward_qkv(sc.dcore.f32(), s.q.f32(), hd, kv, kv + hd, 2 * hd, s.core.f32(), s.lse.f32(),
                              sc.dq.f32(), dkv, dkv + hd, shape, Tk, 0.f, 0);
  linear_backward(w.q, sc.dq.f32(), x, dx, Nq);
  const float beta = accumulate_dctx ? 1.f : 0.f;
  if (adjacent(w.k.weight, w.v.weight)) {
    cpu::gemm(true, false, 2 * hd, in_c, Nk, 1.f, dkv, 2 * hd, ctx, in_c, 1.f, w.k.dweight.f32(), in_c);
    cpu::gemm(false, false, Nk, in_c, 2 * hd, 1.f, dkv, 2 * hd, w.k.weight.f32(), in_c, beta, dctx, in_c);
  } else {
    cpu::gemm(true, false, hd, in_c, Nk, 1.f, dkv, 2 * hd, ctx, in_c, 1.f, w.k.dweight.f32(), in_c);
    cpu::gemm(true, false, hd, in_c, Nk, 1.f, dkv + hd, 2 * hd, ctx, in_c, 1.f, w.v.dweight.f32(), in_c);
    cpu::gemm(false, false, Nk, in_c, hd, 1.f, dkv, 2 * hd, w.k.weight.f32(), in_c, beta, dctx, in_c);
    cpu::gemm(false, false, Nk, in_c, hd, 1.f, dkv + hd, 2 * hd, w.v.weight.f32(), in_c, 1.f, dctx, in_c);
  }
  if (adjacent(w.k.dbias, w.v.dbias)) {
    cpu::bias_backward(dkv, w.k.dbias.f32(), Nk, 2 * hd);
  } else {
    // Column sums in row order (deterministic); only for separate k/v biases.
    float* dbk = mptr(w.k.dbias);
    float* dbv = mptr(w.v.dbias);
    for (int r = 0; r < Nk; r++) {
      const float* row = dkv + size_t(r) * 2 * hd;
      if (dbk)
        for (int c = 0; c < hd; c++) dbk[c] += row[c];
      if (dbv)
        for (int c = 0; c < hd; c++) dbv[c] += row[hd + c];
    }
  }
}

void CrossAttention::forward_self(const LinearParams& qkv, const LinearParams& out, const float* x, int B, int T,
                                  float* y, Saved& s) const {
  const int hd = width(), N = B * T;
  if (qkv.weight.dim(0) != 3 * hd) throw std::logic_error("forward_self: the packed projection has 3 x heads x head_dim rows");
  float* q = s.q.f32();
  linear_forward(qkv, x, q, N);
  cpu::AttentionShape shape{B, T, heads_, head_dim_};
  shape.causal = causal_;
  cpu::attention_forward_qkv(q, 3 * hd, q + hd, q + 2 * hd, 3 * hd, s.core.f32(), s.lse.f32(), shape, T, 0.f, 0);
  linear_forward(out, s.core.f32(), y, N);
}

void CrossAttention::backward_self(const LinearParams& qkv, const LinearParams& out, const float* dy, const float* x,
                                   int B, int T, float* dx, const Saved& s, Scratch& sc) const {
  const int hd = width(), N = B * T;
  linear_backward(out, dy, s.core.f32(), sc.dcore.f32(), N);
  cpu::AttentionShape shape{B, T, heads_, head_dim_};
  shape.causal = causal_;
  const float* q = s.q.f32();
  float* dq = sc.dq.f32();
  cpu::attention_backward_qkv(sc.dcore.f32(), q, 3 * hd, q + hd, q + 2 * hd, 3 * hd, s.core.f32(), s.lse.f32(), dq,
                              dq + hd, dq + 2 * hd, shape, T, 0.f, 0);
  linear_backward(qkv, dq, x, dx, N);
}

}  // namespace loom
