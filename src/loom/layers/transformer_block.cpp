#include "loom/layers/transformer_block.h"

#include <cmath>
#include <cstring>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/dropout.h"
#include "loom/kernels/cpu/layernorm.h"
#include "loom/layers/init.h"

namespace loom {

namespace {
enum DropoutSite { kAttentionProbs = 1, kAttentionOutput = 2, kMlpOutput = 3 };
}

TransformerBlock::TransformerBlock(const GptConfig& cfg, int layer_index, ParamStore& store, Workspace* ws)
    : cfg_(cfg), index_(layer_index), store_(store), ws_(ws) {
  const int64_t h = cfg.hidden_size, f = cfg.ffn_hidden_size;
  const std::string p = name() + ".";
  ln1_w_ = store.add(p + "input_layernorm.weight", {h}, false);
  ln1_b_ = store.add(p + "input_layernorm.bias", {h}, false);
  qkv_w_ = store.add(p + "self_attention.linear_qkv.weight", {3 * h, h}, true);
  qkv_b_ = store.add(p + "self_attention.linear_qkv.bias", {3 * h}, false);
  proj_w_ = store.add(p + "self_attention.linear_proj.weight", {h, h}, true);
  proj_b_ = store.add(p + "self_attention.linear_proj.bias", {h}, false);
  ln2_w_ = store.add(p + "pre_mlp_layernorm.weight", {h}, false);
  ln2_b_ = store.add(p + "pre_mlp_layernorm.bias", {h}, false);
  fc1_w_ = store.add(p + "mlp.linear_fc1.weight", {f, h}, true);
  fc1_b_ = store.add(p + "mlp.linear_fc1.bias", {f}, false);
  fc2_w_ = store.add(p + "mlp.linear_fc2.weight", {h, f}, true);
  fc2_b_ = store.add(p + "mlp.linear_fc2.bias", {h}, false);
}

void TransformerBlock::init_params(uint64_t seed) {
  const float std = cfg_.init_method_std;
  // Megatron's scaled_init_method_normal for the two output projections: std / sqrt(2 L).
  const float out_std = std / std::sqrt(2.0f * float(cfg_.num_layers));
  for (int w : {qkv_w_, fc1_w_}) init_normal(store_.at(w), seed, std);
  for (int w : {proj_w_, fc2_w_}) init_normal(store_.at(w), seed, out_std);
  for (int b : {qkv_b_, proj_b_, fc1_b_, fc2_b_, ln1_b_, ln2_b_}) init_constant(store_.at(b), 0.f);
  for (int w : {ln1_w_, ln2_w_}) init_constant(store_.at(w), 1.f);
}

void TransformerBlock::allocate(int batch, int seq, int slots) {
  const int64_t N = int64_t(batch) * seq, h = cfg_.hidden_size, f = cfg_.ffn_hidden_size;
  saved_.clear();
  saved_.resize(slots);
  for (auto& s : saved_) {
    s.ln1 = Tensor({N, h});
    s.ln1_mean = Tensor({N});
    s.ln1_rstd = Tensor({N});
    s.qkv = Tensor({N, 3 * h});
    s.attn = Tensor({N, h});
    s.lse = Tensor({int64_t(batch) * cfg_.num_attention_heads * seq});
    s.x1 = Tensor({N, h});
    s.ln2 = Tensor({N, h});
    s.ln2_mean = Tensor({N});
    s.ln2_rstd = Tensor({N});
    s.fc1 = Tensor({N, f});
    s.gelu = Tensor({N, f});
  }
}

LinearParams TransformerBlock::linear(int weight, int bias) const {
  const Param& w = store_.at(weight);
  const Param& b = store_.at(bias);
  return LinearParams{w.value, b.value, w.grad, b.grad};
}

uint64_t TransformerBlock::dropout_key(const StepContext& ctx, int which) const {
  return stream_key(ctx.rng_key, 0xB10C, uint64_t(index_), uint64_t(which));
}

void TransformerBlock::forward(const StepContext& ctx, const Tensor& in, Tensor& out) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), h = cfg_.hidden_size, f = cfg_.ffn_hidden_size;
  const float eps = cfg_.layernorm_epsilon;
  const float p_hidden = ctx.training ? cfg_.hidden_dropout : 0.f;
  const float p_attn = ctx.training ? cfg_.attention_dropout : 0.f;
  Saved& s = saved_[ctx.slot];
  s.input = in;
  float* tmp = ws_->tmp.f32();

  cpu::layernorm_forward(in.f32(), store_.at(ln1_w_).value.f32(), store_.at(ln1_b_).value.f32(), s.ln1.f32(),
                         s.ln1_mean.f32(), s.ln1_rstd.f32(), N, h, eps);
  linear_forward(linear(qkv_w_, qkv_b_), s.ln1.f32(), s.qkv.f32(), N);
  cpu::attention_forward(s.qkv.f32(), s.attn.f32(), s.lse.f32(),
                         {mb.batch, mb.seq, cfg_.num_attention_heads, cfg_.head_dim()}, p_attn,
                         dropout_key(ctx, kAttentionProbs));
  linear_forward(linear(proj_w_, proj_b_), s.attn.f32(), tmp, N, /*add_bias=*/false);
  cpu::bias_dropout_add_forward(tmp, store_.at(proj_b_).value.f32(), in.f32(), s.x1.f32(), N, h, p_hidden,
                                dropout_key(ctx, kAttentionOutput));

  cpu::layernorm_forward(s.x1.f32(), store_.at(ln2_w_).value.f32(), store_.at(ln2_b_).value.f32(), s.ln2.f32(),
                         s.ln2_mean.f32(), s.ln2_rstd.f32(), N, h, eps);
  linear_forward(linear(fc1_w_, fc1_b_), s.ln2.f32(), s.fc1.f32(), N, /*add_bias=*/false);
  cpu::bias_gelu_forward(s.fc1.f32(), store_.at(fc1_b_).value.f32(), s.gelu.f32(), N, f);
  linear_forward(linear(fc2_w_, fc2_b_), s.gelu.f32(), tmp, N, /*add_bias=*/false);
  cpu::bias_dropout_add_forward(tmp, store_.at(fc2_b_).value.f32(), s.x1.f32(), out.f32(), N, h, p_hidden,
                                dropout_key(ctx, kMlpOutput));
}

void TransformerBlock::backward(const StepContext& ctx, const Tensor& dout, Tensor& din) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), h = cfg_.hidden_size, f = cfg_.ffn_hidden_size;
  const float p_hidden = cfg_.hidden_dropout;
  const float p_attn = cfg_.attention_dropout;
  Saved& s = saved_[ctx.slot];
  float* dtmp = ws_->tmp.f32();
  float* dres = ws_->dres.f32();
  float* dnorm = ws_->dnorm.f32();
  float* dffn = ws_->dffn.f32();
  float* dqkv = ws_->dqkv.f32();
  const size_t hidden_bytes = sizeof(float) * size_t(N) * h;

  // MLP branch: out = x1 + dropout(fc2(gelu) + b_fc2)
  cpu::bias_dropout_add_backward(dout.f32(), dtmp, store_.at(fc2_b_).grad.f32(), N, h, p_hidden,
                                 dropout_key(ctx, kMlpOutput));
  linear_backward(linear(fc2_w_, fc2_b_), dtmp, s.gelu.f32(), dffn, N, /*accumulate_bias=*/false);
  cpu::bias_gelu_backward(dffn, s.fc1.f32(), store_.at(fc1_b_).value.f32(), dffn, store_.at(fc1_b_).grad.f32(), N,
                          f);
  linear_backward(linear(fc1_w_, fc1_b_), dffn, s.ln2.f32(), dnorm, N, /*accumulate_bias=*/false);
  std::memcpy(dres, dout.f32(), hidden_bytes);  // the residual path
  cpu::layernorm_backward(dnorm, s.x1.f32(), store_.at(ln2_w_).value.f32(), s.ln2_mean.f32(), s.ln2_rstd.f32(),
                          dres, store_.at(ln2_w_).grad.f32(), store_.at(ln2_b_).grad.f32(), N, h);

  // Attention branch: x1 = x + dropout(proj(attn) + b_proj)
  cpu::bias_dropout_add_backward(dres, dtmp, store_.at(proj_b_).grad.f32(), N, h, p_hidden,
                                 dropout_key(ctx, kAttentionOutput));
  linear_backward(linear(proj_w_, proj_b_), dtmp, s.attn.f32(), dnorm, N, /*accumulate_bias=*/false);
  cpu::attention_backward(dnorm, s.qkv.f32(), s.attn.f32(), s.lse.f32(), dqkv,
                          {mb.batch, mb.seq, cfg_.num_attention_heads, cfg_.head_dim()}, p_attn,
                          dropout_key(ctx, kAttentionProbs));
  linear_backward(linear(qkv_w_, qkv_b_), dqkv, s.ln1.f32(), dnorm, N, /*accumulate_bias=*/true);
  std::memcpy(din.f32(), dres, hidden_bytes);
  cpu::layernorm_backward(dnorm, s.input.f32(), store_.at(ln1_w_).value.f32(), s.ln1_mean.f32(),
                          s.ln1_rstd.f32(), din.f32(), store_.at(ln1_w_).grad.f32(), store_.at(ln1_b_).grad.f32(),
                          N, h);
}

}  // namespace loom
