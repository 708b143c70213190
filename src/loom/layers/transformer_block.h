#pragma once
// Megatron-Core's pre-norm transformer layer, composed of sublayers:
//   x1  = x  + dropout(SelfAttention(Norm1(x)) + b_proj)
//   out = x1 + dropout(Mlp(Norm2(x1)) + b_fc2)
// or, with apply_residual_connection_post_layernorm, the residuals taken from the norms' outputs:
//   x1  = Norm1(x)  + dropout(SelfAttention(Norm1(x)) + b_proj)
//   out = Norm2(x1) + dropout(Mlp(Norm2(x1)) + b_fc2)
// GPT and Llama are settings of the same block (TransformerConfig): LayerNorm or RMSNorm, learned
// positions or RoPE, multi-head or grouped-query attention, GELU or SwiGLU, biases or none.
// Tensor parallel as Megatron: the attention's QKV and the MLP's fc1 are column-parallel, their output
// projections row-parallel; with sequence parallelism the norm/dropout/residual regions hold N/T token rows
// and the sublayers' reductions become all-gather / reduce-scatter pairs.
// What the backward needs is declared by each sublayer in one SavedTensors set: per micro-batch slot in
// fp32, or in 2 bytes with half-precision activations (computing in a working set shared by all blocks).
#include <vector>

#include "loom/layers/layer.h"
#include "loom/layers/mlp.h"
#include "loom/layers/norm.h"
#include "loom/layers/saved_tensors.h"
#include "loom/layers/self_attention.h"
#include "loom/layers/transformer_config.h"
#include "loom/layers/workspace.h"

namespace loom {

class TransformerBlock : public Layer {
 public:
  TransformerBlock(const ModelConfig& cfg, int layer_index, ParamStore& store, Workspace* ws, TensorParallel tp,
                   Recompute recompute = Recompute::None);
  std::string name() const override { return "decoder.layers." + std::to_string(index_); }
  void allocate(int batch, int seq, int slots) override;
  void forward(const StepContext& ctx, const Tensor& in, Tensor& out) override;
  // Not deferred: each linear's weight half beside its input half (bf16: its output gradient rounded once).
  void backward(const StepContext& ctx, const Tensor& dout, Tensor& din) override;
  void backward_input(const StepContext& ctx, const Tensor& dout, Tensor& din) override;
  void backward_weight(const StepContext& ctx) override;  // the attention's and MLP's linears
  void init_params(uint64_t seed) override;

 private:
  // A norm whose output feeds a column-parallel linear: its statistics and output are saved, the output
  // rounded before the sequence-parallel gather (every rank then holds the same rounded rows) and kept
  // in its all-rows form.
  struct SavedNorm {
    Norm norm;
    SavedTensors::Handle local, mean, rstd, full;
  };
  void declare_norm(SavedNorm& n, int batch, int seq);
  const float* norm_forward(const SavedNorm& n, const StepContext& ctx, const float* x, int stash_slot);
  void backward_pass(const StepContext& ctx, const Tensor& dout, Tensor& din, bool with_weights);
  void norm_backward(const SavedNorm& n, const StepContext& ctx, const float* dy, const float* x, float* dx);
  // Forward into the compute tensors of ctx.slot, keeping what is saved in `stash_slot` (-1: none).
  void forward_into(const StepContext& ctx, const Tensor& in, float* out, int stash_slot);
  uint64_t dropout_key(const StepContext& ctx, int which) const;
  bool half_activations() const { return cfg_.activation_dtype != DType::F32; }
  bool post_ln() const { return cfg_.apply_residual_connection_post_layernorm; }
  // The norm's output on this rank's rows (the residual of a post-norm block), as it was rounded.
  const float* norm_local(const SavedNorm& n, const StepContext& ctx) const { return saved_.at(n.local, ctx.slot).f32(); }
  const float* bias(int param) const { return param >= 0 ? store_.at(param).value.f32() : nullptr; }
  float* bias_grad(int param) const { return param >= 0 ? store_.at(param).grad.f32() : nullptr; }

  ModelConfig cfg_;
  int index_;
  ParamStore& store_;
  Workspace* ws_;
  TensorParallel tp_;
  Recompute recompute_;
  SavedNorm norm1_, norm2_;
  SelfAttention attention_;
  Mlp mlp_;
  SavedTensors saved_;
  SavedTensors::Handle input_, x1_;  // input_: only with half-precision activations (stashed); both in
                                     // fp32 with an fp32 residual stream
  std::vector<Tensor> input_views_;   // fp32: per slot, the model's boundary the block read
  Bf16Operands bf16_;                 // the workspace's bf16 GEMM operands (--bf16), else null
};

}  // namespace loom
