#include "loom/layers/transformer_block.h"

#include <cstring>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/dropout.h"
#include "loom/kernels/cpu/precision.h"

namespace loom {

namespace {
enum DropoutSite { kAttentionOutput = 2, kMlpOutput = 3 };  // 1: attention probabilities (SelfAttention)

// y = a + b elementwise (y may be a or b).
void add_into(float* y, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
}

TransformerBlock::TransformerBlock(const ModelConfig& cfg, int layer_index, ParamStore& store, Workspace* ws,
                                   TensorParallel tp, Recompute recompute)
    : cfg_(cfg), index_(layer_index), store_(store), ws_(ws), tp_(std::move(tp)), recompute_(recompute) {
  const std::string p = name() + ".";
  // Registration order is the checkpoint's and the flat buffer's: norm1, attention, norm2, MLP.
  norm1_.norm = Norm(cfg, store, p + "input_layernorm", tp_);
  attention_ = SelfAttention(cfg, layer_index, store, p + "self_attention", ws, tp_);
  norm2_.norm = Norm(cfg, store, p + "pre_mlp_layernorm", tp_);
  mlp_ = Mlp(cfg, store, p + "mlp", ws, tp_);
}

void TransformerBlock::init_params(uint64_t seed) {
  norm1_.norm.init_params();
  attention_.init_params(seed);
  norm2_.norm.init_params();
  mlp_.init_params(seed);
}

void TransformerBlock::declare_norm(SavedNorm& n, int batch, int seq) {
  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg_.hidden_size;
  using K = SavedTensors::Kind;
  using Keep = SavedTensors::Keep;
  const bool sp = tp_.sequence_parallel && tp_.active();
  // Without sequence parallelism the local rows are all rows: one tensor, kept. With it, the local
  // output is scratch and its gathered form is kept (what the column-parallel GEMM read).
  n.local = saved_.add(Nl * h, K::Activation, sp ? Keep::Never : Keep::UnlessFull);
  n.mean = saved_.add(n.norm.has_mean() ? Nl : 0, K::Statistic, Keep::UnlessFull);
  n.rstd = saved_.add(Nl, K::Statistic, Keep::UnlessFull);
  n.full = sp ? saved_.add(N * h, K::Activation, Keep::UnlessFull) : n.local;
}

void TransformerBlock::allocate(int batch, int seq, int slots) {
  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg_.hidden_size;
  if (ws_->bf16_in.defined()) {
    bf16_ = {ws_->bf16_in.u16(), ws_->bf16_out.u16(), ws_->bf16_w.defined() ? ws_->bf16_w.u16() : nullptr};
    attention_.set_bf16(&bf16_);
    mlp_.set_bf16(&bf16_);
  }
  if (!ws_->block_working) ws_->block_working = std::make_shared<SharedWorkingSet>();
  saved_ = SavedTensors(recompute_, cfg_.activation_dtype, ws_->block_working);
  using K = SavedTensors::Kind;
  using Keep = SavedTensors::Keep;
  // The residual stream (the block's input and x1) is an activation, or with --fp32-residual-connection
  // kept unrounded in fp32 as statistics are.
  const K residual = cfg_.fp32_residual ? K::Statistic : K::Activation;
  if (half_activations()) input_ = saved_.add(Nl * h, residual, Keep::Always);
  declare_norm(norm1_, batch, seq);
  attention_.declare(saved_, batch, seq, deferred_weights_);
  x1_ = saved_.add(Nl * h, residual, Keep::UnlessFull);
  declare_norm(norm2_, batch, seq);
  mlp_.declare(saved_, batch, seq, deferred_weights_);
  saved_.allocate(slots);
  input_views_.assign(size_t(slots), Tensor());
  if (recompute_ == Recompute::Full && !ws_->recompute_out.defined()) ws_->recompute_out = Tensor({Nl, h});
}

uint64_t TransformerBlock::dropout_key(const StepContext& ctx, int which) const {
  return stream_key(ctx.rng_key, 0xB10C, uint64_t(index_), uint64_t(which));
}

const float* TransformerBlock::norm_forward(const SavedNorm& n, const StepContext& ctx, const float* x, int stash_slot) {
  const int N = ctx.mb->rows(), Nl = tp_.local_rows(N), h = cfg_.hidden_size;
  float* y = saved_.at(n.local, ctx.slot).f32();
  float* mean = saved_.at(n.mean, ctx.slot).f32();
  float* rstd = saved_.at(n.rstd, ctx.slot).f32();
  n.norm.forward(x, y, mean, rstd, Nl);
  if (n.norm.has_mean()) saved_.keep(n.mean, mean, Nl, stash_slot);
  saved_.keep(n.rstd, rstd, Nl, stash_slot);
  float* full = saved_.at(n.full, ctx.slot).f32();
  if (n.full.index != n.local.index) {
    saved_.keep(n.local, y, int64_t(Nl) * h, -1);  // rounded before the gather
    tp_.all_gather_rows(y, full, Nl, h);
  }
  saved_.keep(n.full, full, int64_t(N) * h, stash_slot);
  return full;
}

void TransformerBlock::norm_backward(const SavedNorm& n, const StepContext& ctx, const float* dy, const float* x,
                                     float* dx) {
  const int Nl = tp_.local_rows(ctx.mb->rows());
  n.norm.backward(dy, x, saved_.at(n.mean, ctx.slot).f32(), saved_.at(n.rstd, ctx.slot).f32(), dx, Nl);
}

void TransformerBlock::forward(const StepContext& ctx, const Tensor& in, Tensor& out) {
  // Training keeps what the backward needs; evaluation only computes (same rounding either way).
  const int slot = ctx.training ? ctx.slot : -1;
  const int stash_slot = recompute_ == Recompute::Full ? -1 : slot;
  if (half_activations()) {
    if (slot >= 0) saved_.keep(input_, in.f32(), in.numel(), slot);  // rounded at the boundary: exact
  } else {
    input_views_[size_t(ctx.slot)] = in;
  }
  forward_into(ctx, in, out.f32(), stash_slot);
}

void TransformerBlock::forward_into(const StepContext& ctx, const Tensor& in, float* out, int stash_slot) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), Nl = tp_.local_rows(N), h = cfg_.hidden_size;
  const uint64_t first = uint64_t(tp_.first_row(N)) * uint64_t(h);  // global index of our first element
  const float p_hidden = ctx.training ? cfg_.hidden_dropout : 0.f;
  float* x1 = saved_.at(x1_, ctx.slot).f32();

  const float* ln1 = norm_forward(norm1_, ctx, in.f32(), stash_slot);
  const float* attn = attention_.forward(ctx, saved_, ln1, stash_slot);
  const float* residual1 = post_ln() ? norm_local(norm1_, ctx) : in.f32();
  cpu::bias_dropout_add_forward(attn, bias(attention_.proj().bias()), residual1, x1, Nl, h, p_hidden,
                                dropout_key(ctx, kAttentionOutput), first);
  saved_.keep(x1_, x1, int64_t(Nl) * h, stash_slot);

  const float* ln2 = norm_forward(norm2_, ctx, x1, stash_slot);
  const float* mlp = mlp_.forward(ctx, saved_, ln2, stash_slot);
  const float* residual2 = post_ln() ? norm_local(norm2_, ctx) : x1;
  cpu::bias_dropout_add_forward(mlp, bias(mlp_.fc2().bias()), residual2, out, Nl, h, p_hidden,
                                dropout_key(ctx, kMlpOutput), first);
}

void TransformerBlock::backward(const StepContext& ctx, const Tensor& dout, Tensor& din) {
  if (deferred_weights_) return Layer::backward(ctx, dout, din);
  backward_pass(ctx, dout, din, /*with_weights=*/true);
}

void TransformerBlock::backward_input(const StepContext& ctx, const Tensor& dout, Tensor& din) {
  backward_pass(ctx, dout, din, /*with_weights=*/false);
}

void TransformerBlock::backward_pass(const StepContext& ctx, const Tensor& dout, Tensor& din, bool with_weights) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), Nl = tp_.local_rows(N), h = cfg_.hidden_size;
  const uint64_t first = uint64_t(tp_.first_row(N)) * uint64_t(h);
  const float p_hidden = cfg_.hidden_dropout;
  // The block's input and, when they were not kept, its activations: widened from the stash (half
  // precision) or rebuilt from the input (full recompute: same kernels, same dropout streams, same values).
  Tensor input;
  if (half_activations()) {
    input = saved_.at(input_, ctx.slot);
    saved_.restore(ctx.slot);
  } else {
    input = input_views_[size_t(ctx.slot)];
  }
  if (recompute_ == Recompute::Full) forward_into(ctx, input, ws_->recompute_out.f32(), -1);
  else if (recompute_ == Recompute::Selective) attention_.recompute_core(ctx, saved_);

  float* dlocal = ws_->tmp.f32();  // [Nl, h]: gradient entering a branch
  float* dres = ws_->dres.f32();
  const size_t local_bytes = sizeof(float) * size_t(Nl) * h;
  const float* x1 = saved_.at(x1_, ctx.slot).f32();

  // MLP branch: out = x1 + dropout(fc2(act) + b_fc2)
  cpu::bias_dropout_add_backward(dout.f32(), dlocal, bias_grad(mlp_.fc2().bias()), Nl, h, p_hidden,
                                 dropout_key(ctx, kMlpOutput), first);
  // With the weights: each linear's weight half beside its input half (backward_weight's inputs).
  const float* dln2 = with_weights ? mlp_.backward(ctx, saved_, dlocal, saved_.at(norm2_.full, ctx.slot).f32())
                                   : mlp_.backward_input(ctx, saved_, dlocal);
  if (post_ln()) {  // out = Norm2(x1) + ...: the residual's gradient joins the MLP's at Norm2's output
    add_into(dlocal, dln2, dout.f32(), int64_t(Nl) * h);
    std::memset(dres, 0, local_bytes);
    norm_backward(norm2_, ctx, dlocal, x1, dres);
  } else {
    std::memcpy(dres, dout.f32(), local_bytes);  // the residual path
    norm_backward(norm2_, ctx, dln2, x1, dres);
  }

  // Attention branch: x1 = x + dropout(proj(attn) + b_proj)
  cpu::bias_dropout_add_backward(dres, dlocal, bias_grad(attention_.proj().bias()), Nl, h, p_hidden,
                                 dropout_key(ctx, kAttentionOutput), first);
  const float* dln1 = with_weights
                           ? attention_.backward(ctx, saved_, dlocal, saved_.at(norm1_.full, ctx.slot).f32())
                           : attention_.backward_input(ctx, saved_, dlocal);
  if (post_ln()) {  // x1 = Norm1(x) + ...
    add_into(dres, dln1, dres, int64_t(Nl) * h);
    std::memset(din.f32(), 0, local_bytes);
    norm_backward(norm1_, ctx, dres, input.f32(), din.f32());
  } else {
    std::memcpy(din.f32(), dres, local_bytes);
    norm_backward(norm1_, ctx, dln1, input.f32(), din.f32());
  }
}

void TransformerBlock::backward_weight(const StepContext& ctx) {
  // What backward_input left: the linears' inputs (saved, or rebuilt into the working set by the
  // backward_input just before) and their output gradients. Deferred under half precision, later
  // micro-batches' backward_input have widened their own activations into the shared working set since:
  // widen this one's again (the same values, so the bits of the fused backward).
  if (deferred_weights_ && half_activations()) saved_.restore(ctx.slot);
  mlp_.backward_weight(ctx, saved_, saved_.at(norm2_.full, ctx.slot).f32());
  attention_.backward_weight(ctx, saved_, saved_.at(norm1_.full, ctx.slot).f32());
}

}  // namespace loom
