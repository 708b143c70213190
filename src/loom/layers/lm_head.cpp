#include "loom/layers/lm_head.h"

#include <cstring>

#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/layers/init.h"

namespace loom {

LmHead::LmHead(const ModelConfig& cfg, ParamStore& store, Workspace* ws, TensorParallel tp, int output_weight,
               int vocab_start)
    : cfg_(cfg), store_(store), ws_(ws), tp_(std::move(tp)), out_w_(output_weight), vocab_start_(vocab_start) {
  norm_ = Norm(cfg, store, "decoder.final_layernorm", tp_);
}

void LmHead::init_params(uint64_t) { norm_.init_params(); }

void LmHead::allocate(int batch, int seq, int slots) {
  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg_.hidden_size;
  const bool sp = tp_.sequence_parallel && tp_.active();
  saved_.clear();
  saved_.resize(slots);
  for (auto& s : saved_) {
    s.normed = Tensor({Nl, h});
    s.mean = Tensor({Nl});
    s.rstd = Tensor({Nl});
    s.normed_full = sp ? Tensor({N, h}) : s.normed;
    s.dnormed = Tensor({Nl, h});
    s.dfull = sp ? Tensor({N, h}) : s.dnormed;
    s.token_loss = Tensor({N});
    s.row_scale = Tensor({N});
    if (deferred_weights_) s.dlogits = Tensor({N, int64_t(store_.at(out_w_).shape[0])});
  }
}

cpu::LmHeadScratch LmHead::head_scratch() const {
  cpu::LmHeadScratch scratch{ws_->logits.f32(), ws_->logit_chunk_rows};
  if (ws_->bf16_in.defined()) {  // bf16 GEMMs: the stored bf16 weight, else rounded into the workspace's
    if (ws_->bf16_w.defined()) scratch.w16 = ws_->bf16_w.u16();
    scratch.w16_stored = store_.at(out_w_).stored_bf16;
    scratch.x16 = ws_->bf16_in.u16();
  }
  return scratch;
}

void LmHead::forward(const StepContext& ctx, const Tensor& in, Tensor&) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), Nl = tp_.local_rows(N), h = cfg_.hidden_size;
  const int V = int(store_.at(out_w_).shape[0]);  // this rank's vocabulary rows
  Saved& s = saved_[ctx.slot];
  s.input = in;
  if (!ctx.training && !ctx.loss_sum) return;  // generation: logits() is asked for the rows it needs
  norm_.forward(in.f32(), s.normed.f32(), s.mean.f32(), s.rstd.f32(), Nl);
  if (s.normed_full.raw() != s.normed.raw()) tp_.all_gather_rows(s.normed.f32(), s.normed_full.f32(), Nl, h);

  // Megatron's masked mean: loss = sum(mask * token_loss) / sum(mask).
  double mask_sum = 0;
  for (int r = 0; r < N; r++) mask_sum += mb.loss_mask[r];
  float* scale = s.row_scale.f32();
  const float per_token = mask_sum > 0 ? float(double(ctx.loss_grad_scale) / mask_sum) : 0.f;
  for (int r = 0; r < N; r++) scale[r] = mb.loss_mask[r] * per_token;

  cpu::VocabParallel vp;
  if (tp_.active()) {
    vp.vocab_start = vocab_start_;
    vp.all_reduce_max = [this](float* v, int n) { tp_.comm->all_reduce(v, size_t(n), dist::ReduceOp::Max); };
    vp.all_reduce_sum = [this](float* v, int n) { tp_.comm->all_reduce(v, size_t(n), dist::ReduceOp::Sum); };
  }
  const Param& w = store_.at(out_w_);
  cpu::LmHeadScratch scratch = head_scratch();
  const bool defer = ctx.training && deferred_weights_;
  if (defer) scratch.keep = s.dlogits.f32();
  cpu::lm_head_cross_entropy(s.normed_full.f32(), w.value.f32(), mb.labels, scale, s.token_loss.f32(),
                             ctx.training ? s.dfull.f32() : nullptr, ctx.training && !defer ? w.grad.f32() : nullptr,
                             N, V, h, scratch, tp_.active() ? &vp : nullptr);
  if (ctx.training && tp_.active()) {
    // The input gradient of a vocabulary shard is partial: sum over the group (and scatter the rows).
    if (tp_.sequence_parallel)
      tp_.reduce_scatter_rows(s.dfull.f32(), s.dnormed.f32(), Nl, h);
    else
      tp_.all_reduce(s.dnormed.f32(), long(N) * h);
  }

  double loss_sum = 0;
  const float* tl = s.token_loss.f32();
  for (int r = 0; r < N; r++) loss_sum += double(mb.loss_mask[r]) * tl[r];
  if (ctx.loss_sum) *ctx.loss_sum += loss_sum;
  if (ctx.mask_sum) *ctx.mask_sum += mask_sum;
}

void LmHead::backward_input(const StepContext& ctx, const Tensor&, Tensor& din) {
  const int Nl = tp_.local_rows(ctx.mb->rows()), h = cfg_.hidden_size;
  Saved& s = saved_[ctx.slot];
  std::memset(din.f32(), 0, sizeof(float) * size_t(Nl) * h);
  norm_.backward(s.dnormed.f32(), s.input.f32(), s.mean.f32(), s.rstd.f32(), din.f32(), Nl);
}

void LmHead::backward_weight(const StepContext& ctx) {
  if (!deferred_weights_) return;  // formed in the forward
  const Saved& s = saved_[ctx.slot];
  const Param& w = store_.at(out_w_);
  if (ws_->bf16_in.defined())
    cpu::lm_head_weight_grad_bf16(s.normed_full.f32(), s.dlogits.f32(), w.grad.f32(), ctx.mb->rows(),
                                  int(w.shape[0]), cfg_.hidden_size, ws_->logit_chunk_rows, ws_->bf16_in.u16());
  else
    cpu::lm_head_weight_grad(s.normed_full.f32(), s.dlogits.f32(), w.grad.f32(), ctx.mb->rows(), int(w.shape[0]),
                             cfg_.hidden_size, ws_->logit_chunk_rows);
}

void LmHead::logits(const Tensor& in, const std::vector<int>& rows, float* out) {
  const int h = cfg_.hidden_size, V = int(store_.at(out_w_).shape[0]), n = int(rows.size());
  Saved& s = saved_[0];
  float* normed = s.normed.f32();
  for (int i = 0; i < n; i++)
    norm_.forward(in.f32() + size_t(rows[i]) * h, normed + size_t(i) * h, s.mean.f32() + i, s.rstd.f32() + i, 1);
  cpu::lm_head_logits(normed, store_.at(out_w_).value.f32(), out, n, V, h);
}

}  // namespace loom
