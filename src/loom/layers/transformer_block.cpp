#include "loom/layers/transformer_block.h"

#include <cmath>
#include <any>
#include <cstring>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/dropout.h"
#include "loom/kernels/cpu/layernorm.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/layers/init.h"

namespace loom {

namespace {
enum DropoutSite { kAttentionProbs = 1, kAttentionOutput = 2, kMlpOutput = 3 };
}

TransformerBlock::TransformerBlock(const GptConfig& cfg, int layer_index, ParamStore& store, Workspace* ws,
                                   TensorParallel tp, Recompute recompute)
    : cfg_(cfg), index_(layer_index), store_(store), ws_(ws), tp_(std::move(tp)), recompute_(recompute) {
  const int64_t h = cfg.hidden_size, f = cfg.ffn_hidden_size;
  local_heads_ = cfg.num_attention_heads / tp_.size;
  local_ffn_ = cfg.ffn_hidden_size / tp_.size;
  const int64_t lh = int64_t(local_heads_) * cfg.head_dim(), lf = local_ffn_;
  const std::string p = name() + ".";
  // Replicated parameters whose gradients are partial per rank under sequence parallelism.
  const ParamSplit replicated{{}, -1, 0, tp_.sequence_parallel && tp_.active(), {}};
  auto column = [&](std::vector<int64_t> global, int64_t local_rows) {
    return ParamSplit{std::move(global), 0, tp_.rank * local_rows, false, {}};
  };
  ln1_w_ = store.add(p + "input_layernorm.weight", {h}, false, replicated);
  ln1_b_ = store.add(p + "input_layernorm.bias", {h}, false, replicated);
  qkv_w_ = store.add(p + "self_attention.linear_qkv.weight", {3 * lh, h}, true, column({3 * h, h}, 3 * lh));
  qkv_b_ = store.add(p + "self_attention.linear_qkv.bias", {3 * lh}, false, column({3 * h}, 3 * lh));
  proj_w_ = store.add(p + "self_attention.linear_proj.weight", {h, lh}, true, ParamSplit{{h, h}, 1, tp_.rank * lh, false, {}});
  proj_b_ = store.add(p + "self_attention.linear_proj.bias", {h}, false, replicated);
  ln2_w_ = store.add(p + "pre_mlp_layernorm.weight", {h}, false, replicated);
  ln2_b_ = store.add(p + "pre_mlp_layernorm.bias", {h}, false, replicated);
  fc1_w_ = store.add(p + "mlp.linear_fc1.weight", {lf, h}, true, column({f, h}, lf));
  fc1_b_ = store.add(p + "mlp.linear_fc1.bias", {lf}, false, column({f}, lf));
  fc2_w_ = store.add(p + "mlp.linear_fc2.weight", {h, lf}, true, ParamSplit{{h, f}, 1, tp_.rank * lf, false, {}});
  fc2_b_ = store.add(p + "mlp.linear_fc2.bias", {h}, false, replicated);
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

void TransformerBlock::allocate_saved(Saved& s, int batch, int seq, bool with_attention) const {
  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg_.hidden_size;
  const int64_t lh = int64_t(local_heads_) * cfg_.head_dim(), lf = local_ffn_;
  s.ln1 = Tensor({Nl, h});
  s.ln1_mean = Tensor({Nl});
  s.ln1_rstd = Tensor({Nl});
  s.ln1_full = tp_.sequence_parallel && tp_.active() ? Tensor({N, h}) : s.ln1;
  s.qkv = Tensor({N, 3 * lh});
  if (with_attention) s.attn = Tensor({N, lh});
  s.lse = Tensor({int64_t(batch) * local_heads_ * seq});
  s.x1 = Tensor({Nl, h});
  s.ln2 = Tensor({Nl, h});
  s.ln2_mean = Tensor({Nl});
  s.ln2_rstd = Tensor({Nl});
  s.ln2_full = tp_.sequence_parallel && tp_.active() ? Tensor({N, h}) : s.ln2;
  s.fc1 = Tensor({N, lf});
  s.gelu = Tensor({N, lf});
}

void TransformerBlock::allocate(int batch, int seq, int slots) {
  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg_.hidden_size;
  const int64_t lh = int64_t(local_heads_) * cfg_.head_dim();
  if (ws_->bf16_in.defined()) bf16_ = {ws_->bf16_in.u16(), ws_->bf16_out.u16(), ws_->bf16_w.u16()};
  saved_.clear();
  if ((recompute_ == Recompute::Full || half_activations()) && !ws_->block_scratch) {
    ws_->block_scratch = std::make_shared<std::any>(Saved{});
    allocate_saved(working(), batch, seq, true);
  }
  if (recompute_ == Recompute::Full && !ws_->recompute_out.defined()) ws_->recompute_out = Tensor({Nl, h});
  if (half_activations()) {
    if (!ws_->block_input.defined()) ws_->block_input = Tensor({Nl, h});
    declare_stash(batch, seq);
    stash_.allocate(slots);
    return;
  }
  saved_.resize(slots);
  // Full: per slot only the input (a view the model keeps); the activations are rebuilt per backward.
  if (recompute_ == Recompute::Full) return;
  for (auto& s : saved_) allocate_saved(s, batch, seq, recompute_ == Recompute::None);
  // Selective: the attention output is rebuilt from QKV; one buffer serves every slot.
  if (recompute_ == Recompute::Selective) {
    if (!ws_->attn_scratch.defined()) ws_->attn_scratch = Tensor({N, lh});
    for (auto& s : saved_) s.attn = ws_->attn_scratch;
  }
}

void TransformerBlock::declare_stash(int batch, int seq) {
  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg_.hidden_size;
  const int64_t lh = int64_t(local_heads_) * cfg_.head_dim(), lf = local_ffn_;
  const DType act = cfg_.activation_dtype, stat = DType::F32;
  ids_ = {};
  ids_.input = stash_.add(Nl * h, act);
  if (recompute_ == Recompute::Full) return;
  ids_.ln1 = stash_.add(N * h, act);  // all token rows: what the QKV GEMM read
  ids_.ln1_mean = stash_.add(Nl, stat);
  ids_.ln1_rstd = stash_.add(Nl, stat);
  ids_.qkv = stash_.add(N * 3 * lh, act);
  if (recompute_ == Recompute::None) {  // selective rebuilds both from QKV
    ids_.attn = stash_.add(N * lh, act);
    ids_.lse = stash_.add(int64_t(batch) * local_heads_ * seq, stat);
  }
  ids_.x1 = stash_.add(Nl * h, act);
  ids_.ln2 = stash_.add(N * h, act);
  ids_.ln2_mean = stash_.add(Nl, stat);
  ids_.ln2_rstd = stash_.add(Nl, stat);
  ids_.fc1 = stash_.add(N * lf, act);
  ids_.gelu = stash_.add(N * lf, act);
}

TransformerBlock::Saved& TransformerBlock::working() const { return std::any_cast<Saved&>(*ws_->block_scratch); }

LinearParams TransformerBlock::linear(int weight, int bias) const {
  const Param& w = store_.at(weight);
  const Param& b = store_.at(bias);
  return LinearParams{w.value, b.value, w.grad, b.grad, bf16_.in ? &bf16_ : nullptr};
}

uint64_t TransformerBlock::dropout_key(const StepContext& ctx, int which) const {
  return stream_key(ctx.rng_key, 0xB10C, uint64_t(index_), uint64_t(which));
}

const float* TransformerBlock::reduce_partial(float* partial, float* local, int N) const {
  const int h = cfg_.hidden_size;
  if (!tp_.active()) return partial;
  if (tp_.sequence_parallel) {
    tp_.reduce_scatter_rows(partial, local, tp_.local_rows(N), h);
    return local;
  }
  tp_.all_reduce(partial, long(N) * h);
  return partial;
}

void TransformerBlock::forward(const StepContext& ctx, const Tensor& in, Tensor& out) {
  if (half_activations()) {
    // Training keeps what the backward needs; evaluation only computes (same rounding either way).
    const int slot = ctx.training ? ctx.slot : -1;
    if (slot >= 0) stash_.put(slot, ids_.input, in.f32(), in.numel());  // rounded at the boundary: exact
    forward_into(working(), ctx, in, out.f32(), recompute_ == Recompute::Full ? -1 : slot);
    return;
  }
  if (recompute_ == Recompute::Full) {
    saved_[ctx.slot].input = in;
    forward_into(working(), ctx, in, out.f32(), -1);
    return;
  }
  forward_into(saved_[ctx.slot], ctx, in, out.f32(), -1);
}

void TransformerBlock::forward_into(Saved& s, const StepContext& ctx, const Tensor& in, float* out, int stash_slot) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), Nl = tp_.local_rows(N), h = cfg_.hidden_size, lf = local_ffn_;
  const int64_t lh = int64_t(local_heads_) * cfg_.head_dim();
  const uint64_t first = uint64_t(tp_.first_row(N)) * uint64_t(h);  // global index of our first element
  const bool sp = tp_.sequence_parallel && tp_.active();
  const float eps = cfg_.layernorm_epsilon;
  const float p_hidden = ctx.training ? cfg_.hidden_dropout : 0.f;
  const float p_attn = ctx.training ? cfg_.attention_dropout : 0.f;
  const cpu::AttentionShape shape = attention_shape(mb);
  const DType act = cfg_.activation_dtype;
  // A saved activation, as soon as it exists: rounded to the activation type (so what follows reads what
  // the backward will), and kept in the stash when asked. Statistics stay fp32.
  auto keep = [&](int id, float* x, int64_t n) {
    if (stash_slot >= 0 && id >= 0) stash_.put(stash_slot, id, x, n);
    else cpu::round_to_dtype(x, long(n), act);
  };
  auto keep_stat = [&](int id, float* x, int64_t n) {
    if (stash_slot >= 0 && id >= 0) stash_.put(stash_slot, id, x, n);
  };
  s.input = in;
  float* partial = ws_->partial.f32();
  float* tmp = ws_->tmp.f32();

  // A LayerNorm whose output is saved: statistics kept, output rounded (before the sequence-parallel
  // gather, so every rank holds the same rounded rows) and its all-row form kept.
  auto saved_layernorm = [&](const float* x, int w, int b, Tensor& y, Tensor& mean, Tensor& rstd, Tensor& full,
                             int id_mean, int id_rstd, int id) {
    cpu::layernorm_forward(x, store_.at(w).value.f32(), store_.at(b).value.f32(), y.f32(), mean.f32(), rstd.f32(), Nl,
                           h, eps);
    keep_stat(id_mean, mean.f32(), Nl);
    keep_stat(id_rstd, rstd.f32(), Nl);
    if (sp) {
      cpu::round_to_dtype(y.f32(), long(Nl) * h, act);
      tp_.all_gather_rows(y.f32(), full.f32(), Nl, h);
    }
    keep(id, full.f32(), int64_t(N) * h);
  };

  saved_layernorm(in.f32(), ln1_w_, ln1_b_, s.ln1, s.ln1_mean, s.ln1_rstd, s.ln1_full, ids_.ln1_mean, ids_.ln1_rstd,
                  ids_.ln1);
  linear_forward(linear(qkv_w_, qkv_b_), s.ln1_full.f32(), s.qkv.f32(), N);
  keep(ids_.qkv, s.qkv.f32(), N * 3 * lh);
  cpu::attention_forward(s.qkv.f32(), s.attn.f32(), s.lse.f32(), shape, p_attn, dropout_key(ctx, kAttentionProbs));
  keep(ids_.attn, s.attn.f32(), N * lh);
  keep_stat(ids_.lse, s.lse.f32(), int64_t(mb.batch) * local_heads_ * mb.seq);
  linear_forward(linear(proj_w_, proj_b_), s.attn.f32(), partial, N, /*add_bias=*/false);
  const float* proj = reduce_partial(partial, tmp, N);
  cpu::bias_dropout_add_forward(proj, store_.at(proj_b_).value.f32(), in.f32(), s.x1.f32(), Nl, h, p_hidden,
                                dropout_key(ctx, kAttentionOutput), first);
  keep(ids_.x1, s.x1.f32(), int64_t(Nl) * h);

  saved_layernorm(s.x1.f32(), ln2_w_, ln2_b_, s.ln2, s.ln2_mean, s.ln2_rstd, s.ln2_full, ids_.ln2_mean, ids_.ln2_rstd,
                  ids_.ln2);
  linear_forward(linear(fc1_w_, fc1_b_), s.ln2_full.f32(), s.fc1.f32(), N, /*add_bias=*/false);
  keep(ids_.fc1, s.fc1.f32(), int64_t(N) * lf);
  cpu::bias_gelu_forward(s.fc1.f32(), store_.at(fc1_b_).value.f32(), s.gelu.f32(), N, lf);
  keep(ids_.gelu, s.gelu.f32(), int64_t(N) * lf);
  linear_forward(linear(fc2_w_, fc2_b_), s.gelu.f32(), partial, N, /*add_bias=*/false);
  const float* mlp = reduce_partial(partial, tmp, N);
  cpu::bias_dropout_add_forward(mlp, store_.at(fc2_b_).value.f32(), s.x1.f32(), out, Nl, h, p_hidden,
                                dropout_key(ctx, kMlpOutput), first);
}

void TransformerBlock::restore(Saved& s, const StepContext& ctx) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), Nl = tp_.local_rows(N), h = cfg_.hidden_size, lf = local_ffn_;
  const int64_t lh = int64_t(local_heads_) * cfg_.head_dim();
  const int slot = ctx.slot;
  s.input = ws_->block_input.slice_rows(0, Nl);
  stash_.get(slot, ids_.input, s.input.f32(), int64_t(Nl) * h);
  if (recompute_ == Recompute::Full) {  // same kernels, same rounding, same dropout streams: the same values
    forward_into(s, ctx, s.input, ws_->recompute_out.f32(), -1);
    return;
  }
  stash_.get(slot, ids_.ln1, s.ln1_full.f32(), int64_t(N) * h);
  stash_.get(slot, ids_.ln1_mean, s.ln1_mean.f32(), Nl);
  stash_.get(slot, ids_.ln1_rstd, s.ln1_rstd.f32(), Nl);
  stash_.get(slot, ids_.qkv, s.qkv.f32(), N * 3 * lh);
  stash_.get(slot, ids_.x1, s.x1.f32(), int64_t(Nl) * h);
  stash_.get(slot, ids_.ln2, s.ln2_full.f32(), int64_t(N) * h);
  stash_.get(slot, ids_.ln2_mean, s.ln2_mean.f32(), Nl);
  stash_.get(slot, ids_.ln2_rstd, s.ln2_rstd.f32(), Nl);
  stash_.get(slot, ids_.fc1, s.fc1.f32(), int64_t(N) * lf);
  stash_.get(slot, ids_.gelu, s.gelu.f32(), int64_t(N) * lf);
  if (ids_.attn >= 0) {
    stash_.get(slot, ids_.attn, s.attn.f32(), N * lh);
    stash_.get(slot, ids_.lse, s.lse.f32(), int64_t(mb.batch) * local_heads_ * mb.seq);
  } else {
    recompute_attention(s, ctx);
  }
}

void TransformerBlock::recompute_attention(Saved& s, const StepContext& ctx) const {
  const MicroBatch& mb = *ctx.mb;
  cpu::attention_forward(s.qkv.f32(), s.attn.f32(), s.lse.f32(), attention_shape(mb), cfg_.attention_dropout,
                         dropout_key(ctx, kAttentionProbs));
  // Rounded as the forward rounded it (no-op for fp32 activations).
  cpu::round_to_dtype(s.attn.f32(), long(mb.rows()) * local_heads_ * cfg_.head_dim(), cfg_.activation_dtype);
}

cpu::AttentionShape TransformerBlock::attention_shape(const MicroBatch& mb) const {
  return {mb.batch, mb.seq, local_heads_, cfg_.head_dim(), tp_.rank * local_heads_, cfg_.num_attention_heads,
          mb.key_start};
}

void TransformerBlock::backward(const StepContext& ctx, const Tensor& dout, Tensor& din) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), Nl = tp_.local_rows(N), h = cfg_.hidden_size, lf = local_ffn_;
  const uint64_t first = uint64_t(tp_.first_row(N)) * uint64_t(h);
  const bool sp = tp_.sequence_parallel && tp_.active();
  const float p_hidden = cfg_.hidden_dropout;
  const float p_attn = cfg_.attention_dropout;
  const cpu::AttentionShape shape = attention_shape(mb);
  Saved* saved = nullptr;
  if (half_activations()) {
    saved = &working();
    restore(*saved, ctx);
  } else if (recompute_ == Recompute::Full) {
    // Rebuild this micro-batch's activations from the saved input: same kernels, same dropout streams.
    saved = &working();
    forward_into(*saved, ctx, saved_[ctx.slot].input, ws_->recompute_out.f32(), -1);
  } else {
    saved = &saved_[ctx.slot];
    if (recompute_ == Recompute::Selective) recompute_attention(*saved, ctx);
  }
  Saved& s = *saved;
  float* dlocal = ws_->tmp.f32();      // [Nl, h]: gradient entering a branch, then of a LayerNorm output
  float* dfull = ws_->partial.f32();   // [N, h]:  the same for all token rows / partial sums
  float* dres = ws_->dres.f32();
  float* dffn = ws_->dffn.f32();
  float* dqkv = ws_->dqkv.f32();
  const size_t local_bytes = sizeof(float) * size_t(Nl) * h;

  // The gradient of a branch's input rows: all rows (sequence parallel: gathered from the group).
  auto branch_input_grad = [&](float* local) -> float* {
    if (!sp) return local;
    tp_.all_gather_rows(local, dfull, Nl, h);
    return dfull;
  };
  // A column-parallel layer's input gradient is partial per rank: sum (and scatter) over the group.
  auto norm_output_grad = [&](float* partial) -> float* {
    if (!tp_.active()) return partial;
    if (sp) {
      tp_.reduce_scatter_rows(partial, dlocal, Nl, h);
      return dlocal;
    }
    tp_.all_reduce(partial, long(N) * h);
    return partial;
  };

  // MLP branch: out = x1 + dropout(fc2(gelu) + b_fc2)
  cpu::bias_dropout_add_backward(dout.f32(), dlocal, store_.at(fc2_b_).grad.f32(), Nl, h, p_hidden,
                                 dropout_key(ctx, kMlpOutput), first);
  float* d_fc2 = branch_input_grad(dlocal);
  linear_backward(linear(fc2_w_, fc2_b_), d_fc2, s.gelu.f32(), dffn, N, /*accumulate_bias=*/false);
  cpu::bias_gelu_backward(dffn, s.fc1.f32(), store_.at(fc1_b_).value.f32(), dffn, store_.at(fc1_b_).grad.f32(), N,
                          lf);
  float* dnorm_partial = sp ? ws_->dnorm.f32() : dfull;  // d_fc2 may still live in dfull under SP
  linear_backward(linear(fc1_w_, fc1_b_), dffn, s.ln2_full.f32(), dnorm_partial, N, /*accumulate_bias=*/false);
  const float* dln2 = norm_output_grad(dnorm_partial);
  std::memcpy(dres, dout.f32(), local_bytes);  // the residual path
  cpu::layernorm_backward(dln2, s.x1.f32(), store_.at(ln2_w_).value.f32(), s.ln2_mean.f32(), s.ln2_rstd.f32(), dres,
                          store_.at(ln2_w_).grad.f32(), store_.at(ln2_b_).grad.f32(), Nl, h);

  // Attention branch: x1 = x + dropout(proj(attn) + b_proj)
  cpu::bias_dropout_add_backward(dres, dlocal, store_.at(proj_b_).grad.f32(), Nl, h, p_hidden,
                                 dropout_key(ctx, kAttentionOutput), first);
  float* d_proj = branch_input_grad(dlocal);
  float* dattn = ws_->dnorm.f32();
  linear_backward(linear(proj_w_, proj_b_), d_proj, s.attn.f32(), dattn, N, /*accumulate_bias=*/false);
  cpu::attention_backward(dattn, s.qkv.f32(), s.attn.f32(), s.lse.f32(), dqkv, shape, p_attn,
                          dropout_key(ctx, kAttentionProbs));
  linear_backward(linear(qkv_w_, qkv_b_), dqkv, s.ln1_full.f32(), dfull, N, /*accumulate_bias=*/true);
  const float* dln1 = norm_output_grad(dfull);
  std::memcpy(din.f32(), dres, local_bytes);
  cpu::layernorm_backward(dln1, s.input.f32(), store_.at(ln1_w_).value.f32(), s.ln1_mean.f32(), s.ln1_rstd.f32(),
                          din.f32(), store_.at(ln1_w_).grad.f32(), store_.at(ln1_b_).grad.f32(), Nl, h);
}

}  // namespace loom
