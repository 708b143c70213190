#include "loom/models/coca/attentional_pooler.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/layernorm.h"
#include "loom/models/coca/vision_init.h"

namespace loom {

AttentionalPooler::AttentionalPooler(const AttentionalPoolerShape& s, ParamStore& store, const std::string& prefix,
                                     int max_batch, int max_context)
    : s_(s), store_(store), packed_(s.context_dim == s.d_model), max_batch_(max_batch), max_context_(max_context) {
  if (s.queries <= 0 || s.d_model <= 0 || s.context_dim <= 0 || s.heads <= 0 || s.d_model % s.heads != 0)
    throw std::invalid_argument("AttentionalPooler: d_model must be a positive multiple of the heads");
  const int64_t E = s.d_model, C = s.context_dim;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    const bool decay = shape.size() >= 2;
    const int i = store.add(prefix + "." + name, std::move(shape), decay);
    params_.push_back(i);
    return i;
  };
  // named_parameters() order: the pooler's own query, then attn (its own weights before out_proj), ln_q, ln_k.
  query_ = add("query", {s.queries, E});
  if (packed_) {
    in_w_ = add("attn.in_proj_weight", {3 * E, E});
  } else {
    wq_ = add("attn.q_proj_weight", {E, E});
    wk_ = add("attn.k_proj_weight", {E, C});
    wv_ = add("attn.v_proj_weight", {E, C});
  }
  bias_ = add("attn.in_proj_bias", {3 * E});
  wo_ = add("attn.out_proj.weight", {E, E});
  bo_ = add("attn.out_proj.bias", {E});
  lnq_w_ = add("ln_q.weight", {E});
  lnq_b_ = add("ln_q.bias", {E});
  lnk_w_ = add("ln_k.weight", {C});
  lnk_b_ = add("ln_k.bias", {C});

  const int64_t Nk = int64_t(max_batch) * max_context, Nq = int64_t(max_batch) * s.queries, Q = s.queries;
  xn_ = Tensor({Nk, C});
  mean_k_ = Tensor({Nk});
  rstd_k_ = Tensor({Nk});
  qn_ = Tensor({Q, E});
  mean_q_ = Tensor({Q});
  rstd_q_ = Tensor({Q});
  q_ = Tensor({Nq, E});
  kv_ = Tensor({Nk, 2 * E});
  attn_ = Tensor({Nq, E});
  lse_ = Tensor({int64_t(max_batch) * s.heads * Q});
  out_ = Tensor({Nq, E});
  d_attn_ = Tensor({Nq, E});
  dq_ = Tensor({Nq, E});
  dkv_ = Tensor({Nk, 2 * E});
  dq_sum_ = Tensor({Q, E});
  dqn_ = Tensor({Q, E});
  dxn_ = Tensor({Nk, C});
}

AttentionalPooler::Weights AttentionalPooler::values() const {
  auto v = [&](int i) { return i < 0 ? nullptr : store_.at(i).value.f32(); };
  const int64_t E = s_.d_model;
  Weights w{};
  w.query = v(query_);
  if (packed_) {
    w.wq = v(in_w_);
    w.wk = w.wq + E * E;
    w.wv = w.wq + 2 * E * E;
  } else {
    w.wq = v(wq_), w.wk = v(wk_), w.wv = v(wv_);
  }
  w.bias = v(bias_), w.wo = v(wo_), w.bo = v(bo_);
  w.lnq_w = v(lnq_w_), w.lnq_b = v(lnq_b_), w.lnk_w = v(lnk_w_), w.lnk_b = v(lnk_b_);
  return w;
}

AttentionalPooler::Weights AttentionalPooler::grads() const {
  auto g = [&](int i) { return i < 0 ? nullptr : store_.at(i).grad.f32(); };
  const int64_t E = s_.d_model;
  Weights w{};
  w.query = g(query_);
  if (packed_) {
    w.wq = g(in_w_);
    w.wk = w.wq + E * E;
    w.wv = w.wq + 2 * E * E;
  } else {
    w.wq = g(wq_), w.wk = g(wk_), w.wv = g(wv_);
  }
  w.bias = g(bias_), w.wo = g(wo_), w.bo = g(bo_);
  w.lnq_w = g(lnq_w_), w.lnq_b = g(lnq_b_), w.lnk_w = g(lnk_w_), w.lnk_b = g(lnk_b_);
  return w;
}

void AttentionalPooler::init_params(uint64_t seed) const {
  const float E = float(s_.d_model), C = float(s_.context_dim);
  coca_init::normal(store_.at(query_), seed, 1.0f);
  if (packed_) {
    coca_init::uniform(store_.at(in_w_), seed, std::sqrt(6.0f / (E + 3 * E)));  // fans of [3E, E]
  } else {
    coca_init::uniform(store_.at(wq_), seed, std::sqrt(6.0f / (E + E)));
    coca_init::uniform(store_.at(wk_), seed, std::sqrt(6.0f / (E + C)));
    coca_init::uniform(store_.at(wv_), seed, std::sqrt(6.0f / (E + C)));
  }
  coca_init::constant(store_.at(bias_), 0.0f);
  coca_init::uniform(store_.at(wo_), seed, 1.0f / std::sqrt(E));
  coca_init::constant(store_.at(bo_), 0.0f);
  coca_init::constant(store_.at(lnq_w_), 1.0f);
  coca_init::constant(store_.at(lnq_b_), 0.0f);
  coca_init::constant(store_.at(lnk_w_), 1.0f);
  coca_init::constant(store_.at(lnk_b_), 0.0f);
}

void AttentionalPooler::forward(const float* x, int B, int Tk) {
  if (B <= 0 || B > max_batch_ || Tk <= 0 || Tk > max_context_)
    throw std::invalid_argument("AttentionalPooler: batch or context beyond the reserved buffers");
  x_ = x, B_ = B, Tk_ = Tk;
  const Weights w = values();
  const int E = s_.d_model, C = s_.context_dim, Q = s_.queries, Nk = B * Tk;
  cpu::layernorm_forward(x, w.lnk_w, w.lnk_b, xn_.f32(), mean_k_.f32(), rstd_k_.f32(), Nk, C, s_.ln_eps);
  cpu::layernorm_forward(w.query, w.lnq_w, w.lnq_b, qn_.f32(), mean_q_.f32(), rstd_q_.f32(), Q, E, s_.ln_eps);
  // The queries are the same for every sample: project once, then repeat (the attention kernel takes one
  // query block per sample).
  float* q = q_.f32();
  cpu::gemm(false, true, Q, E, E, 1.f, qn_.f32(), E, w.wq, E, 0.f, q, E);
  cpu::add_bias(q, w.bias, Q, E);
  for (int b = 1; b < B; b++) std::memcpy(q + size_t(b) * Q * E, q, sizeof(float) * size_t(Q) * E);
  // k | v side by side in one [Nk, 2E] buffer; in_proj_bias holds bk and bv next to each other.
  float* kv = kv_.f32();
  cpu::gemm(false, true, Nk, E, C, 1.f, xn_.f32(), C, w.wk, C, 0.f, kv, 2 * E);
  cpu::gemm(false, true, Nk, E, C, 1.f, xn_.f32(), C, w.wv, C, 0.f, kv + E, 2 * E);
  cpu::add_bias(kv, w.bias + E, Nk, 2 * E);
  cpu::AttentionShape sh{B, Q, s_.heads, E / s_.heads};
  sh.causal = false;
  cpu::attention_forward_qkv(q, E, kv, kv + E, 2 * E, attn_.f32(), lse_.f32(), sh, Tk, 0.f, 0);
  cpu::gemm(false, true, B * Q, E, E, 1.f, attn_.f32(), E, w.wo, E, 0.f, out_.f32(), E);
  cpu::add_bias(out_.f32(), w.bo, B * Q, E);
}

void AttentionalPooler::backward(const float* d_out, float* dx) {
  if (!x_) throw std::logic_error("AttentionalPooler::backward before forward");
  if (!dx) throw std::invalid_argument("AttentionalPooler::backward needs the context's gradient buffer");
  const Weights w = values(), g = grads();
  const int E = s_.d_model, C = s_.context_dim, Q = s_.queries, B = B_, Tk = Tk_, Nk = B * Tk, Nq = B * Q;
  cpu::gemm(true, false, E, E, Nq, 1.f, d_out, E, attn_.f32(), E, 1.f, g.wo, E);
  cpu::bias_backward(d_out, g.bo, Nq, E);
  cpu::gemm(false, false, Nq, E, E, 1.f, d_out, E, w.wo, E, 0.f, d_attn_.f32(), E);
  float* kv = kv_.f32();
  float* dkv = dkv_.f32();
  cpu::AttentionShape sh{B, Q, s_.heads, E / s_.heads};
  sh.causal = false;
  cpu::attention_backward_qkv(d_attn_.f32(), q_.f32(), E, kv, kv + E, 2 * E, attn_.f32(), lse_.f32(), dq_.f32(), dkv,
                              dkv + E, sh, Tk, 0.f, 0);
  // The repeated queries' gradient is the sum over the samples (in sample order: deterministic).
  float* dqs = dq_sum_.f32();
  const float* dq = dq_.f32();
  std::memcpy(dqs, dq, sizeof(float) * size_t(Q) * E);
  for (int b = 1; b < B; b++) {
    const float* src = dq + size_t(b) * Q * E;
    for (size_t i = 0; i < size_t(Q) * E; i++) dqs[i] += src[i];
  }
  cpu::bias_backward(dqs, g.bias, Q, E);
  cpu::gemm(true, false, E, E, Q, 1.f, dqs, E, qn_.f32(), E, 1.f, g.wq, E);
  cpu::gemm(false, false, Q, E, E, 1.f, dqs, E, w.wq, E, 0.f, dqn_.f32(), E);
  cpu::layernorm_backward(dqn_.f32(), w.query, w.lnq_w, mean_q_.f32(), rstd_q_.f32(), g.query, g.lnq_w, g.lnq_b, Q, E);
  cpu::bias_backward(dkv, g.bias + E, Nk, 2 * E);
  cpu::gemm(true, false, E, C, Nk, 1.f, dkv, 2 * E, xn_.f32(), C, 1.f, g.wk, C);
  cpu::gemm(true, false, E, C, Nk, 1.f, dkv + E, 2 * E, xn_.f32(), C, 1.f, g.wv, C);
  float* dxn = dxn_.f32();
  cpu::gemm(false, false, Nk, C, E, 1.f, dkv, 2 * E, w.wk, C, 0.f, dxn, C);
  cpu::gemm(false, false, Nk, C, E, 1.f, dkv + E, 2 * E, w.wv, C, 1.f, dxn, C);
  cpu::layernorm_backward(dxn, x_, w.lnk_w, mean_k_.f32(), rstd_k_.f32(), dx, g.lnk_w, g.lnk_b, Nk, C);
}

}  // namespace loom
