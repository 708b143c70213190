#include "loom/layers/lm_head.h"

#include <cstring>

#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/kernels/cpu/layernorm.h"
#include "loom/layers/init.h"

namespace loom {

LmHead::LmHead(const GptConfig& cfg, ParamStore& store, Workspace* ws, int output_weight)
    : cfg_(cfg), store_(store), ws_(ws), out_w_(output_weight) {
  ln_w_ = store.add("decoder.final_layernorm.weight", {cfg.hidden_size}, false);
  ln_b_ = store.add("decoder.final_layernorm.bias", {cfg.hidden_size}, false);
}

void LmHead::init_params(uint64_t) {
  init_constant(store_.at(ln_w_), 1.f);
  init_constant(store_.at(ln_b_), 0.f);
}

void LmHead::allocate(int batch, int seq, int slots) {
  const int64_t N = int64_t(batch) * seq, h = cfg_.hidden_size;
  saved_.clear();
  saved_.resize(slots);
  for (auto& s : saved_) {
    s.normed = Tensor({N, h});
    s.mean = Tensor({N});
    s.rstd = Tensor({N});
    s.dnormed = Tensor({N, h});
    s.token_loss = Tensor({N});
    s.row_scale = Tensor({N});
  }
}

void LmHead::forward(const StepContext& ctx, const Tensor& in, Tensor&) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), h = cfg_.hidden_size, V = cfg_.padded_vocab_size;
  Saved& s = saved_[ctx.slot];
  s.input = in;
  if (!ctx.training && !ctx.loss_sum) return;  // generation: logits() is asked for the rows it needs
  cpu::layernorm_forward(in.f32(), store_.at(ln_w_).value.f32(), store_.at(ln_b_).value.f32(), s.normed.f32(),
                         s.mean.f32(), s.rstd.f32(), N, h, cfg_.layernorm_epsilon);

  // Megatron's masked mean: loss = sum(mask * token_loss) / sum(mask).
  double mask_sum = 0;
  for (int r = 0; r < N; r++) mask_sum += mb.loss_mask[r];
  float* scale = s.row_scale.f32();
  const float per_token = mask_sum > 0 ? float(double(ctx.loss_grad_scale) / mask_sum) : 0.f;
  for (int r = 0; r < N; r++) scale[r] = mb.loss_mask[r] * per_token;

  const Param& w = store_.at(out_w_);
  cpu::lm_head_cross_entropy(s.normed.f32(), w.value.f32(), mb.labels, scale, s.token_loss.f32(),
                             ctx.training ? s.dnormed.f32() : nullptr, ctx.training ? w.grad.f32() : nullptr, N,
                             V, h, {ws_->logits.f32(), ws_->logit_chunk_rows});

  double loss_sum = 0;
  const float* tl = s.token_loss.f32();
  for (int r = 0; r < N; r++) loss_sum += double(mb.loss_mask[r]) * tl[r];
  if (ctx.loss_sum) *ctx.loss_sum += loss_sum;
  if (ctx.mask_sum) *ctx.mask_sum += mask_sum;
}

void LmHead::backward(const StepContext& ctx, const Tensor&, Tensor& din) {
  const int N = ctx.mb->rows(), h = cfg_.hidden_size;
  Saved& s = saved_[ctx.slot];
  std::memset(din.f32(), 0, sizeof(float) * size_t(N) * h);
  cpu::layernorm_backward(s.dnormed.f32(), s.input.f32(), store_.at(ln_w_).value.f32(), s.mean.f32(),
                          s.rstd.f32(), din.f32(), store_.at(ln_w_).grad.f32(), store_.at(ln_b_).grad.f32(), N, h);
}

void LmHead::logits(const Tensor& in, const std::vector<int>& rows, float* out) {
  const int h = cfg_.hidden_size, V = cfg_.padded_vocab_size, n = int(rows.size());
  Saved& s = saved_[0];
  float* normed = s.normed.f32();
  for (int i = 0; i < n; i++)
    cpu::layernorm_forward(in.f32() + size_t(rows[i]) * h, store_.at(ln_w_).value.f32(),
                           store_.at(ln_b_).value.f32(), normed + size_t(i) * h, s.mean.f32() + i,
                           s.rstd.f32() + i, 1, h, cfg_.layernorm_epsilon);
  cpu::lm_head_logits(normed, store_.at(out_w_).value.f32(), out, n, V, h);
}

}  // namespace loom
