#include "loom/layers/self_attention.h"

#include <cmath>
#include <cstring>

#include "loom/core/error.h"
#include "loom/core/rng.h"
#include "loom/layers/init.h"

namespace loom {

namespace {
constexpr int kAttentionProbs = 1;  // dropout site of the attention probabilities (the block owns 2 and 3)
}

SelfAttention::SelfAttention(const ModelConfig& cfg, int layer_index, ParamStore& store, const std::string& prefix,
                             Workspace* ws, const TensorParallel& tp)
    : cfg_(cfg), index_(layer_index), store_(&store), ws_(ws), tp_(tp) {
  const int T = tp.size, heads = cfg.num_attention_heads, groups = cfg.query_groups();
  if (heads % groups)
    fail("--num-attention-heads (" + std::to_string(heads) + ") must be divisible by --num-query-groups (" +
         std::to_string(groups) + ")");
  if (heads % T || groups % T)
    fail("--num-attention-heads (" + std::to_string(heads) + ") and the query groups (" + std::to_string(groups) +
         ") must be divisible by --tensor-model-parallel-size (" + std::to_string(T) + ")");
  local_heads_ = heads / T;
  local_groups_ = groups / T;
  qkv_ = ColumnParallelLinear(store, {prefix + ".linear_qkv"}, cfg.hidden_size, cfg.qkv_width(), cfg.add_qkv_bias, tp);
  proj_ = RowParallelLinear(store, prefix + ".linear_proj", cfg.attention_width(), cfg.hidden_size, cfg.add_bias_linear,
                            tp);
  if (cfg.position_embedding == PositionKind::Rope && !ws->rope) {
    const int rotary = int(std::lround(cfg.head_dim() * cfg.rope.percent));
    if (rotary % 2) fail("the rotary dimension (head size x --rotary-percent) must be even");
    cpu::RopeScaling scaling{cfg.rope.scaling_factor, cfg.rope.low_freq_factor, cfg.rope.high_freq_factor,
                             cfg.rope.original_max_position};
    const auto inv_freq = cpu::rope_inv_freq(rotary, cfg.rope.base, cfg.rope.llama3_scaling ? &scaling : nullptr);
    ws->rope = std::make_shared<cpu::RopeTable>(cpu::make_rope_table(rotary, cfg.max_position_embeddings, inv_freq));
  }
}

void SelfAttention::init_params(uint64_t seed) const {
  const float std = cfg_.init_method_std;
  // Megatron's scaled_init_method_normal for the output projection: std / sqrt(2 L).
  const float out_std = std / std::sqrt(2.0f * float(cfg_.num_layers));
  init_weight(store_->at(qkv_.weight()), seed, std, cfg_.init_method_xavier_uniform);
  init_weight(store_->at(proj_.weight()), seed, out_std, cfg_.init_method_xavier_uniform);
  if (qkv_.bias() >= 0) init_constant(store_->at(qkv_.bias()), 0.f);
  if (proj_.bias() >= 0) init_constant(store_->at(proj_.bias()), 0.f);
}

void SelfAttention::declare(SavedTensors& saved, int batch, int seq, bool deferred_weights) {
  const int64_t N = int64_t(batch) * seq, d = cfg_.head_dim();
  using K = SavedTensors::Kind;
  using Keep = SavedTensors::Keep;
  qkv_out_ = saved.add(N * qkv_.local_out(), K::Activation, Keep::UnlessFull);
  core_out_ = saved.add(N * local_heads_ * d, K::Activation, Keep::WithoutRecompute);
  lse_ = saved.add(int64_t(batch) * local_heads_ * seq, K::Statistic, Keep::WithoutRecompute);
  const Keep grads = deferred_weights ? Keep::Always : Keep::Never;
  d_qkv_ = saved.add(N * qkv_.local_out(), K::Statistic, grads);
  d_proj_ = saved.add(N * cfg_.hidden_size, K::Statistic, grads);
}

cpu::AttentionShape SelfAttention::shape(const MicroBatch& mb) const {
  cpu::AttentionShape s{mb.batch, mb.seq, local_heads_, cfg_.head_dim(), tp_.rank * local_heads_,
                        cfg_.num_attention_heads, mb.key_start};
  s.groups = local_groups_;
  s.causal = cfg_.causal;
  return s;
}

uint64_t SelfAttention::dropout_key(const StepContext& ctx) const {
  return stream_key(ctx.rng_key, 0xB10C, uint64_t(index_), uint64_t(kAttentionProbs));
}

void SelfAttention::rope(const MicroBatch& mb, float* qkv, bool backward) const {
  if (!ws_->rope) return;
  // Per group the query heads and the key are adjacent heads: rotate heads/groups + 1 of them.
  const int d = cfg_.head_dim(), per_group = local_heads_ / local_groups_ + 2;
  const long ld = long(qkv_.local_out());
  for (int g = 0; g < local_groups_; g++) {
    float* x = qkv + size_t(g) * per_group * d;
    if (backward)
      cpu::rope_backward(x, mb.rows(), ld, per_group - 1, d, ws_->rope->rotary_dim, mb.positions, *ws_->rope,
                         cfg_.rope.interleaved);
    else
      cpu::rope_forward(x, mb.rows(), ld, per_group - 1, d, ws_->rope->rotary_dim, mb.positions, *ws_->rope,
                        cfg_.rope.interleaved);
  }
}

const float* SelfAttention::forward(const StepContext& ctx, const SavedTensors& saved, const float* x_full,
                                    int stash_slot) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows();
  const int64_t lh = int64_t(local_heads_) * cfg_.head_dim();
  float* qkv = saved.at(qkv_out_, ctx.slot).f32();
  float* core = saved.at(core_out_, ctx.slot).f32();
  float* lse = saved.at(lse_, ctx.slot).f32();
  qkv_.forward(x_full, qkv, N);
  rope(mb, qkv, false);
  saved.keep(qkv_out_, qkv, N * qkv_.local_out(), stash_slot);
  cpu::attention_forward(qkv, core, lse, shape(mb), ctx.training ? cfg_.attention_dropout : 0.f, dropout_key(ctx));
  saved.keep(core_out_, core, N * lh, stash_slot);
  saved.keep(lse_, lse, int64_t(mb.batch) * local_heads_ * mb.seq, stash_slot);
  float* partial = ws_->partial.f32();
  proj_.forward(core, partial, N);
  return proj_.reduce_output(partial, ws_->tmp.f32(), N);
}

void SelfAttention::recompute_core(const StepContext& ctx, const SavedTensors& saved) const {
  const MicroBatch& mb = *ctx.mb;
  float* core = saved.at(core_out_, ctx.slot).f32();
  cpu::attention_forward(saved.at(qkv_out_, ctx.slot).f32(), core, saved.at(lse_, ctx.slot).f32(), shape(mb),
                         cfg_.attention_dropout, dropout_key(ctx));
  // Rounded as the forward rounded it (no-op for fp32 activations).
  saved.keep(core_out_, core, int64_t(mb.rows()) * local_heads_ * cfg_.head_dim(), -1);
}

const float* SelfAttention::backward(const StepContext& ctx, const SavedTensors& saved, const float* d_out,
                                     const float* x_full) {
  return backward_pass(ctx, saved, d_out, x_full);
}

const float* SelfAttention::backward_input(const StepContext& ctx, const SavedTensors& saved, const float* d_out) {
  return backward_pass(ctx, saved, d_out, nullptr);
}

const float* SelfAttention::backward_pass(const StepContext& ctx, const SavedTensors& saved, const float* d_out,
                                          const float* x_full) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows();
  const float* qkv = saved.at(qkv_out_, ctx.slot).f32();
  const float* core = saved.at(core_out_, ctx.slot).f32();
  const float* lse = saved.at(lse_, ctx.slot).f32();
  float* d_proj = saved.at(d_proj_, ctx.slot).f32();  // every row of the output gradient
  if (proj_.gather_output_grad(d_out, d_proj, N) == d_out)
    std::memcpy(d_proj, d_out, sizeof(float) * size_t(N) * size_t(cfg_.hidden_size));
  // Deferred weight gradients under half precision: d_proj and dqkv are the shared working set's, so the
  // stash keeps this micro-batch's copy for backward_weight (nothing to do otherwise).
  saved.keep(d_proj_, d_proj, int64_t(N) * cfg_.hidden_size, ctx.slot);
  float* dcore = ws_->dnorm.f32();
  // With x_full each linear's weight half runs beside its input half, as Mlp's.
  if (x_full) proj_.backward(d_proj, core, dcore, N);
  else proj_.backward_input(d_proj, dcore, N);
  float* dqkv = saved.at(d_qkv_, ctx.slot).f32();
  cpu::attention_backward(dcore, qkv, core, lse, dqkv, shape(mb), cfg_.attention_dropout, dropout_key(ctx));
  rope(mb, dqkv, true);
  saved.keep(d_qkv_, dqkv, int64_t(N) * qkv_.local_out(), ctx.slot);
  float* dfull = ws_->partial.f32();  // x's partial gradient over every row
  if (x_full) qkv_.backward(dqkv, x_full, dfull, N, /*accumulate_bias=*/true);
  else qkv_.backward_input(dqkv, dfull, N);
  return qkv_.reduce_input_grad(dfull, ws_->tmp.f32(), N, cfg_.hidden_size);
}

void SelfAttention::backward_weight(const StepContext& ctx, const SavedTensors& saved, const float* x_full) const {
  const int N = ctx.mb->rows();
  proj_.backward_weight(saved.at(d_proj_, ctx.slot).f32(), saved.at(core_out_, ctx.slot).f32(), N);
  qkv_.backward_weight(saved.at(d_qkv_, ctx.slot).f32(), x_full, N, /*accumulate_bias=*/true);
}

}  // namespace loom
