#pragma once
// Self-attention as one sublayer: column-parallel fused QKV, rotary embedding of queries and keys
// (RoPE configs), flash-style core attention (causal or bidirectional; grouped-query attention with
// several query heads per key/value group), row-parallel output projection. Megatron's QKV layout: per
// query group [q for heads/groups heads, k, v], each head_dim wide, so a tensor-parallel rank's slice of
// the rows is a whole number of groups (with one group per head this is GPT's per-head [q k v]).
// Saves the QKV activation (after RoPE) and the core attention's output and log-sum-exp; selective
// recompute rebuilds the last two from the QKV. The backward comes in two halves: backward_input (the
// input gradient; it keeps the output gradients of the QKV and projection linears) and backward_weight
// (their weight gradients), which a zero-bubble pipeline runs later (declare with deferred_weights: those
// gradients are then kept per micro-batch slot, else in the blocks' shared working set).
#include <memory>

#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/rope.h"
#include "loom/layers/layer.h"
#include "loom/layers/parallel_linear.h"
#include "loom/layers/saved_tensors.h"
#include "loom/layers/transformer_config.h"
#include "loom/layers/workspace.h"

namespace loom {

class SelfAttention {
 public:
  SelfAttention() = default;
  SelfAttention(const ModelConfig& cfg, int layer_index, ParamStore& store, const std::string& prefix, Workspace* ws,
                const TensorParallel& tp);
  void init_params(uint64_t seed) const;
  void declare(SavedTensors& saved, int batch, int seq, bool deferred_weights = false);
  void set_bf16(const Bf16Operands* b) { qkv_.set_bf16(b), proj_.set_bf16(b); }
  const RowParallelLinear& proj() const { return proj_; }

  // x_full: every token row of the normalised input. Returns this rank's rows of the projection's output
  // (summed over tensor-parallel ranks, without its bias), in the workspace.
  const float* forward(const StepContext& ctx, const SavedTensors& saved, const float* x_full, int stash_slot);
  // The rebuilt core attention of selective recompute (from the saved QKV).
  void recompute_core(const StepContext& ctx, const SavedTensors& saved) const;
  // d_out: this rank's rows of the gradient of the output (before bias-dropout-add's backward). Returns
  // this rank's rows of the gradient of x (summed over the group), in the workspace.
  // backward: backward_input's and backward_weight's work, each linear's two halves together (the same bits).
  const float* backward(const StepContext& ctx, const SavedTensors& saved, const float* d_out, const float* x_full);
  const float* backward_input(const StepContext& ctx, const SavedTensors& saved, const float* d_out);
  void backward_weight(const StepContext& ctx, const SavedTensors& saved, const float* x_full) const;

 private:
  // The input half, with each linear's weight half beside it when x_full is set.
  const float* backward_pass(const StepContext& ctx, const SavedTensors& saved, const float* d_out, const float* x_full);
  cpu::AttentionShape shape(const MicroBatch& mb) const;
  uint64_t dropout_key(const StepContext& ctx) const;
  void rope(const MicroBatch& mb, float* qkv, bool backward) const;

  ModelConfig cfg_;
  int index_ = 0;
  ParamStore* store_ = nullptr;
  Workspace* ws_ = nullptr;
  TensorParallel tp_;
  ColumnParallelLinear qkv_;
  RowParallelLinear proj_;
  int local_heads_ = 0, local_groups_ = 0;
  SavedTensors::Handle qkv_out_, core_out_, lse_;
  SavedTensors::Handle d_qkv_, d_proj_;  // the linears' output gradients, for backward_weight
};

}  // namespace loom
