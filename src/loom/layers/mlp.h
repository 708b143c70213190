#pragma once
// The MLP as one sublayer: column-parallel fc1, activation (GELU tanh/erf, quick GELU, or SwiGLU with fc1
// producing a gate and an up half, each its own column-parallel parameter), row-parallel fc2. The fc1
// bias is fused into the activation (Megatron's bias_gelu); fc2's bias is added by the block's
// bias-dropout-add. Saves fc1's output (before its bias) and the activation's output. As SelfAttention's,
// the backward comes in an input half and a weight half (the fc1/fc2 weight gradients).
#include "loom/layers/layer.h"
#include "loom/layers/parallel_linear.h"
#include "loom/layers/saved_tensors.h"
#include "loom/layers/transformer_config.h"
#include "loom/layers/workspace.h"

namespace loom {

class Mlp {
 public:
  Mlp() = default;
  Mlp(const ModelConfig& cfg, ParamStore& store, const std::string& prefix, Workspace* ws, const TensorParallel& tp);
  void init_params(uint64_t seed) const;
  void declare(SavedTensors& saved, int batch, int seq, bool deferred_weights = false);
  void set_bf16(const Bf16Operands* b) { fc1_.set_bf16(b), fc2_.set_bf16(b); }
  const RowParallelLinear& fc2() const { return fc2_; }
  int64_t local_ffn() const { return local_ffn_; }
  int64_t local_fc1() const { return fc1_.local_out(); }

  // As SelfAttention::forward/backward: x_full every normalised token row; returns this rank's rows.
  const float* forward(const StepContext& ctx, const SavedTensors& saved, const float* x_full, int stash_slot);
  // backward: backward_input's and backward_weight's work, each linear's two halves together (the same bits).
  const float* backward(const StepContext& ctx, const SavedTensors& saved, const float* d_out, const float* x_full);
  const float* backward_input(const StepContext& ctx, const SavedTensors& saved, const float* d_out);
  void backward_weight(const StepContext& ctx, const SavedTensors& saved, const float* x_full) const;

 private:
  // The input half, with each linear's weight half beside it when x_full is set.
  const float* backward_pass(const StepContext& ctx, const SavedTensors& saved, const float* d_out, const float* x_full);
  // GELU-family biases are fused into the activation (Megatron's bias_gelu); gated MLPs add theirs in fc1.
  bool bias_in_activation() const;
  void activation_forward(const float* fc1, float* out, int N) const;
  void activation_backward(const float* dy, const float* fc1, float* dfc1, int N) const;

  ModelConfig cfg_;
  ParamStore* store_ = nullptr;
  Workspace* ws_ = nullptr;
  TensorParallel tp_;
  ColumnParallelLinear fc1_;
  RowParallelLinear fc2_;
  int64_t local_ffn_ = 0;
  SavedTensors::Handle fc1_out_, act_out_;
  SavedTensors::Handle d_fc1_, d_fc2_;  // the linears' output gradients, for backward_weight
};

}  // namespace loom
