#include "loom/models/coca/clip_block.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/dropout.h"
#include "loom/layers/init.h"

namespace loom {

namespace {

// nn.Linear's default bias init, U(-bound, bound), from the parameter's own stream (as init_normal).
void init_uniform(Param& p, uint64_t seed, float bound) {
  Rng rng(param_stream(seed, p.canonical_name()));
  float* dst = p.value.f32();
  for (int64_t i = 0; i < p.numel(); i++) dst[i] = (2.f * rng.uniform() - 1.f) * bound;
}

}  // namespace

ClipBlock::ClipBlock(ParamStore& store, const std::string& prefix, int width, int heads, int mlp_hidden, float eps,
                     bool causal, bool cross)
    : store_(&store), width_(width), heads_(heads), ffn_(mlp_hidden), cross_(cross) {
  if (width % heads) throw std::invalid_argument("ClipBlock: width not divisible by heads");
  TransformerConfig tc;
  tc.normalization = NormKind::LayerNorm;
  tc.layernorm_epsilon = eps;
  tc.hidden_size = width;
  const TensorParallel one;
  const int first = int(store.all().size());
  ln1_ = Norm(tc, store, prefix + ".ln_1", one);
  in_w_ = store.add(prefix + ".attn.in_proj_weight", {3LL * width, width}, true);
  in_b_ = store.add(prefix + ".attn.in_proj_bias", {3LL * width}, false);
  out_w_ = store.add(prefix + ".attn.out_proj.weight", {width, width}, true);
  out_b_ = store.add(prefix + ".attn.out_proj.bias", {width}, false);
  if (cross) ln1_kv_ = Norm(tc, store, prefix + ".ln_1_kv", one);
  ln2_ = Norm(tc, store, prefix + ".ln_2", one);
  fc_w_ = store.add(prefix + ".mlp.c_fc.weight", {mlp_hidden, width}, true);
  fc_b_ = store.add(prefix + ".mlp.c_fc.bias", {mlp_hidden}, false);
  proj_w_ = store.add(prefix + ".mlp.c_proj.weight", {width, mlp_hidden}, true);
  proj_b_ = store.add(prefix + ".mlp.c_proj.bias", {width}, false);
  for (int i = first; i < int(store.all().size()); i++) params_.push_back(i);
  // The text tower's blocks are causal; the decoder's cross blocks see every image token.
  attn_ = CrossAttention(heads, width / heads, causal && !cross);
}

ClipBlock::Acts ClipBlock::make_acts(int64_t rows, int64_t ctx_rows) const {
  Acts a;
  a.ln1 = Tensor({rows, width_});
  a.ln1_mean = Tensor({rows});
  a.ln1_rstd = Tensor({rows});
  if (cross_) {
    a.kv = Tensor({ctx_rows, width_});
    a.kv_mean = Tensor({ctx_rows});
    a.kv_rstd = Tensor({ctx_rows});
  }
  a.attn = attn_.make_saved(rows, ctx_rows, !cross_);
  a.x1 = Tensor({rows, width_});
  a.ln2 = Tensor({rows, width_});
  a.ln2_mean = Tensor({rows});
  a.ln2_rstd = Tensor({rows});
  a.fc1 = Tensor({rows, ffn_});
  a.act = Tensor({rows, ffn_});
  return a;
}

ClipBlock::Scratch ClipBlock::make_scratch(int64_t rows, int64_t ctx_rows) const {
  Scratch s;
  s.branch = Tensor({rows, width_});
  s.dx1 = Tensor({rows, width_});
  s.dffn = Tensor({rows, ffn_});
  if (cross_) s.dkv = Tensor({ctx_rows, width_});
  s.attn = attn_.make_scratch(rows, ctx_rows, !cross_);
  return s;
}

void ClipBlock::init_params(uint64_t seed, float attn_std, float proj_std, float fc_std) const {
  ln1_.init_params();
  if (cross_) ln1_kv_.init_params();
  ln2_.init_params();
  init_normal(store_->at(in_w_), seed, attn_std);
  init_constant(store_->at(in_b_), 0.f);
  init_normal(store_->at(out_w_), seed, proj_std);
  init_constant(store_->at(out_b_), 0.f);
  init_normal(store_->at(fc_w_), seed, fc_std);
  init_uniform(store_->at(fc_b_), seed, 1.f / std::sqrt(float(width_)));
  init_normal(store_->at(proj_w_), seed, proj_std);
  init_uniform(store_->at(proj_b_), seed, 1.f / std::sqrt(float(ffn_)));
}

LinearParams ClipBlock::linear(int weight, int bias) const {
  const Param& w = store_->at(weight);
  const Param& b = store_->at(bias);
  return LinearParams{w.value, b.value, w.grad, b.grad, nullptr};
}

AttentionProjections ClipBlock::cross_projections() const {
  const Param& w = store_->at(in_w_);
  const Param& b = store_->at(in_b_);
  // In the forward the unit is acquired without gradients: sharded (ZeRO-2) or half-precision gradients
  // then have no view yet.
  auto rows = [](const Tensor& t, int64_t r0, int64_t r1) { return t.defined() ? t.slice_rows(r0, r1) : Tensor(); };
  auto part = [&](int i) {
    const int64_t r0 = int64_t(i) * width_, r1 = r0 + width_;
    return LinearParams{w.value.slice_rows(r0, r1), b.value.slice_rows(r0, r1), rows(w.grad, r0, r1),
                        rows(b.grad, r0, r1), nullptr};
  };
  return AttentionProjections{part(0), part(1), part(2), linear(out_w_, out_b_)};
}

void ClipBlock::forward(const float* x, const float* ctx, int B, int T, int Tk, float* out, Acts& a) const {
  const int N = B * T;
  float* branch = out;  // the attention's output, before the residual is added in place
  ln1_.forward(x, a.ln1.f32(), a.ln1_mean.f32(), a.ln1_rstd.f32(), N);
  if (cross_) {
    ln1_kv_.forward(ctx, a.kv.f32(), a.kv_mean.f32(), a.kv_rstd.f32(), B * Tk);
    attn_.forward(cross_projections(), a.ln1.f32(), a.kv.f32(), B, T, Tk, branch, a.attn);
  } else {
    attn_.forward_self(linear(in_w_, in_b_), linear(out_w_, out_b_), a.ln1.f32(), B, T, branch, a.attn);
  }
  // The residual adds: Megatron's bias-dropout-add kernel with p = 0 (vectorised, threaded).
  float* x1 = a.x1.f32();
  cpu::bias_dropout_add_forward(branch, nullptr, x, x1, N, width_, 0.f, 0);
  ln2_.forward(x1, a.ln2.f32(), a.ln2_mean.f32(), a.ln2_rstd.f32(), N);
  const LinearParams fc = linear(fc_w_, fc_b_);
  linear_forward(fc, a.ln2.f32(), a.fc1.f32(), N, false);  // the bias goes into the GELU
  cpu::bias_gelu_exact_forward(a.fc1.f32(), fc.bias.f32(), a.act.f32(), N, ffn_);
  const LinearParams proj = linear(proj_w_, proj_b_);
  linear_forward(proj, a.act.f32(), out, N, false);
  cpu::bias_dropout_add_forward(out, proj.bias.f32(), x1, out, N, width_, 0.f, 0);  // out is also the kernel's x (elementwise)
}

void ClipBlock::backward(const float* dout, const float* x, const float* ctx, int B, int T, int Tk, float* dx,
                         float* dctx, const Acts& a, Scratch& s) const {
  const int N = B * T;
  const size_t n = size_t(N) * width_;
  float* dx1 = s.dx1.f32();
  float* dnorm = s.branch.f32();
  std::memcpy(dx1, dout, n * sizeof(float));
  // MLP branch.
  linear_backward(linear(proj_w_, proj_b_), dout, a.act.f32(), s.dffn.f32(), N);
  const LinearParams fc = linear(fc_w_, fc_b_);
  cpu::bias_gelu_exact_backward(s.dffn.f32(), a.fc1.f32(), fc.bias.f32(), s.dffn.f32(), fc.dbias.f32(), N, ffn_);
  linear_backward(fc, s.dffn.f32(), a.ln2.f32(), dnorm, N, false);
  ln2_.backward(dnorm, a.x1.f32(), a.ln2_mean.f32(), a.ln2_rstd.f32(), dx1, N);
  // Attention branch (dout is not read again: dx may alias it).
  if (cross_) {
    float* dkv = s.dkv.f32();
    attn_.backward(cross_projections(), dx1, a.ln1.f32(), a.kv.f32(), B, T, Tk, dnorm, dkv, a.attn, s.attn);
    ln1_kv_.backward(dkv, ctx, a.kv_mean.f32(), a.kv_rstd.f32(), dctx, B * Tk);
  } else {
    attn_.backward_self(linear(in_w_, in_b_), linear(out_w_, out_b_), dx1, a.ln1.f32(), B, T, dnorm, a.attn, s.attn);
  }
  std::memcpy(dx, dx1, n * sizeof(float));
  ln1_.backward(dnorm, x, a.ln1_mean.f32(), a.ln1_rstd.f32(), dx, N);
}

}  // namespace loom
