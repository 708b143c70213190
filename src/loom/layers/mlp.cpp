#include "loom/layers/mlp.h"

#include <cmath>
#include <cstring>

#include "loom/core/error.h"
#include "loom/kernels/cpu/activation.h"
#include "loom/layers/init.h"

namespace loom {

Mlp::Mlp(const ModelConfig& cfg, ParamStore& store, const std::string& prefix, Workspace* ws, const TensorParallel& tp)
    : cfg_(cfg), store_(&store), ws_(ws), tp_(tp) {
  if (cfg.ffn_hidden_size % tp.size)
    fail("--ffn-hidden-size (" + std::to_string(cfg.ffn_hidden_size) +
         ") must be divisible by --tensor-model-parallel-size (" + std::to_string(tp.size) + ")");
  local_ffn_ = cfg.ffn_hidden_size / tp.size;
  const bool bias = cfg.add_bias_linear;
  if (cfg.gated_mlp()) {
    // Gate and up projections as two parameters, each split over the ranks: rank r's fc1 output is
    // [gate_r | up_r], as Megatron's per-rank torch.chunk(fc1, 2) sees it, whatever the layout. Their biases
    // (HF's mlp_bias) are added by the linear, each into its half of the row, not by the activation.
    fc1_ = ColumnParallelLinear(store, {prefix + ".linear_fc1_gate", prefix + ".linear_fc1_up"}, cfg.hidden_size,
                                cfg.ffn_hidden_size, bias, tp);
  } else {
    fc1_ = ColumnParallelLinear(store, {prefix + ".linear_fc1"}, cfg.hidden_size, cfg.ffn_hidden_size, bias, tp);
  }
  fc2_ = RowParallelLinear(store, prefix + ".linear_fc2", cfg.ffn_hidden_size, cfg.hidden_size, bias, tp);
}

void Mlp::init_params(uint64_t seed) const {
  const float std = cfg_.init_method_std;
  const float out_std = std / std::sqrt(2.0f * float(cfg_.num_layers));  // scaled_init_method_normal
  const bool xavier = cfg_.init_method_xavier_uniform;
  // Megatron's fc1 of a gated MLP is one [2 ffn, h] tensor (gate rows, then up rows): its xavier fans.
  const int64_t fc1_rows = int64_t(cfg_.ffn_hidden_size) * (cfg_.gated_mlp() ? 2 : 1);
  for (int p = 0; p < (cfg_.gated_mlp() ? 2 : 1); p++) {
    init_weight(store_->at(fc1_.weight(p)), seed, std, xavier, fc1_rows);
    if (fc1_.bias(p) >= 0) init_constant(store_->at(fc1_.bias(p)), 0.f);
  }
  init_weight(store_->at(fc2_.weight()), seed, out_std, xavier);
  if (fc2_.bias() >= 0) init_constant(store_->at(fc2_.bias()), 0.f);
}

void Mlp::declare(SavedTensors& saved, int batch, int seq, bool deferred_weights) {
  const int64_t N = int64_t(batch) * seq;
  using K = SavedTensors::Kind;
  using Keep = SavedTensors::Keep;
  fc1_out_ = saved.add(N * fc1_.local_out(), K::Activation, Keep::UnlessFull);
  act_out_ = saved.add(N * local_ffn_, K::Activation, Keep::UnlessFull);
  const Keep grads = deferred_weights ? Keep::Always : Keep::Never;
  d_fc1_ = saved.add(N * fc1_.local_out(), K::Statistic, grads);
  d_fc2_ = saved.add(N * cfg_.hidden_size, K::Statistic, grads);
}

bool Mlp::bias_in_activation() const { return !cfg_.gated_mlp() && fc1_.bias() >= 0; }

void Mlp::activation_forward(const float* fc1, float* out, int N) const {
  const float* b = bias_in_activation() ? store_->at(fc1_.bias()).value.f32() : nullptr;
  const int F = int(local_ffn_);
  switch (cfg_.activation) {
    case ActivationKind::Gelu: cpu::bias_gelu_forward(fc1, b, out, N, F); break;
    case ActivationKind::GeluExact: cpu::bias_gelu_exact_forward(fc1, b, out, N, F); break;
    case ActivationKind::QuickGelu: cpu::bias_quick_gelu_forward(fc1, b, out, N, F); break;
    case ActivationKind::SwiGlu: cpu::bias_swiglu_forward(fc1, nullptr, out, N, F); break;
  }
}

void Mlp::activation_backward(const float* dy, const float* fc1, float* dfc1, int N) const {
  const bool has_bias = bias_in_activation();
  const float* b = has_bias ? store_->at(fc1_.bias()).value.f32() : nullptr;
  float* db = has_bias ? store_->at(fc1_.bias()).grad.f32() : nullptr;
  const int F = int(local_ffn_);
  switch (cfg_.activation) {
    case ActivationKind::Gelu: cpu::bias_gelu_backward(dy, fc1, b, dfc1, db, N, F); break;
    case ActivationKind::GeluExact: cpu::bias_gelu_exact_backward(dy, fc1, b, dfc1, db, N, F); break;
    case ActivationKind::QuickGelu: cpu::bias_quick_gelu_backward(dy, fc1, b, dfc1, db, N, F); break;
    case ActivationKind::SwiGlu: cpu::bias_swiglu_backward(dy, fc1, nullptr, dfc1, nullptr, N, F); break;
  }
}

const float* Mlp::forward(const StepContext& ctx, const SavedTensors& saved, const float* x_full, int stash_slot) {
  const int N = ctx.mb->rows();
  float* fc1 = saved.at(fc1_out_, ctx.slot).f32();
  float* act = saved.at(act_out_, ctx.slot).f32();
  fc1_.forward(x_full, fc1, N, /*add_bias=*/!bias_in_activation());
  saved.keep(fc1_out_, fc1, int64_t(N) * fc1_.local_out(), stash_slot);
  activation_forward(fc1, act, N);
  saved.keep(act_out_, act, int64_t(N) * local_ffn_, stash_slot);
  float* partial = ws_->partial.f32();
  fc2_.forward(act, partial, N);
  return fc2_.reduce_output(partial, ws_->tmp.f32(), N);
}

const float* Mlp::backward(const StepContext& ctx, const SavedTensors& saved, const float* d_out, const float* x_full) {
  return backward_pass(ctx, saved, d_out, x_full);
}

const float* Mlp::backward_input(const StepContext& ctx, const SavedTensors& saved, const float* d_out) {
  return backward_pass(ctx, saved, d_out, nullptr);
}

const float* Mlp::backward_pass(const StepContext& ctx, const SavedTensors& saved, const float* d_out,
                                const float* x_full) {
  const int N = ctx.mb->rows();
  const bool sp = tp_.sequence_parallel && tp_.active();
  const float* fc1 = saved.at(fc1_out_, ctx.slot).f32();
  float* d_fc2 = saved.at(d_fc2_, ctx.slot).f32();  // every row of the output gradient
  if (fc2_.gather_output_grad(d_out, d_fc2, N) == d_out)
    std::memcpy(d_fc2, d_out, sizeof(float) * size_t(N) * size_t(cfg_.hidden_size));
  // Deferred weight gradients under half precision: d_fc2 and dfc1 are the shared working set's, so the
  // stash keeps this micro-batch's copy for backward_weight (nothing to do otherwise).
  saved.keep(d_fc2_, d_fc2, int64_t(N) * cfg_.hidden_size, ctx.slot);
  float* dact = ws_->dffn.f32();
  // With x_full each linear's weight half runs beside its input half (bf16: the output gradient rounded
  // once for both GEMMs); backward_weight's products and order of accumulation, so the same bits.
  if (x_full) fc2_.backward(d_fc2, saved.at(act_out_, ctx.slot).f32(), dact, N);
  else fc2_.backward_input(d_fc2, dact, N);
  float* dfc1 = saved.at(d_fc1_, ctx.slot).f32();  // SwiGLU widens [N, F] into fc1's [N, 2F]
  activation_backward(dact, fc1, dfc1, N);
  saved.keep(d_fc1_, dfc1, int64_t(N) * fc1_.local_out(), ctx.slot);
  float* dx_partial = sp ? ws_->dnorm.f32() : ws_->partial.f32();
  if (x_full) fc1_.backward(dfc1, x_full, dx_partial, N, /*accumulate_bias=*/!bias_in_activation());
  else fc1_.backward_input(dfc1, dx_partial, N);
  return fc1_.reduce_input_grad(dx_partial, ws_->tmp.f32(), N, cfg_.hidden_size);
}

void Mlp::backward_weight(const StepContext& ctx, const SavedTensors& saved, const float* x_full) const {
  const int N = ctx.mb->rows();
  fc2_.backward_weight(saved.at(d_fc2_, ctx.slot).f32(), saved.at(act_out_, ctx.slot).f32(), N);
  // A gated MLP's gate and up biases were added by the linear; a GELU's inside the activation (its gradient there).
  fc1_.backward_weight(saved.at(d_fc1_, ctx.slot).f32(), x_full, N, /*accumulate_bias=*/!bias_in_activation());
}

}  // namespace loom
