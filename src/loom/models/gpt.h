#pragma once
// Megatron's GPT as an ordered list of layers: [embedding, block 0 .. block L-1, output head].
// The model owns the parameters (one ParamStore), the residual-stream activations between layers for
// each micro-batch slot, and the scratch the layers share. A pipeline stage will own a slice of the list.
#include <functional>
#include <memory>
#include <vector>

#include "loom/layers/layer.h"
#include "loom/layers/lm_head.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/models/gpt_config.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

class GptModel {
 public:
  // Activations are reserved for micro-batches of up to batch x seq tokens in `slots` slots.
  GptModel(const GptConfig& cfg, int batch, int seq, int slots = 1, TensorParallel tp = {});

  const GptConfig& config() const { return cfg_; }
  const TensorParallel& tensor_parallel() const { return tp_; }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  std::vector<std::unique_ptr<Layer>>& layers() { return layers_; }
  // Parameters [first, second) of the store belong to layer i (the tied output weight to the embedding).
  std::pair<int, int> layer_params(int i) const { return layer_params_[size_t(i)]; }

  void init(uint64_t seed);
  // Forward through every layer; the head adds the micro-batch's loss to ctx.loss_sum / mask_sum and,
  // when ctx.training, prepares the loss gradient.
  void forward(const StepContext& ctx);
  // Backward through every layer in reverse, accumulating parameter gradients; `after_layer(i)` (if set)
  // runs once layer i is done (data parallelism starts reducing finished gradients there).
  void backward(const StepContext& ctx, const std::function<void(int)>& after_layer = {});
  // Logits [rows.size(), padded vocab] at the given rows after a forward with ctx.training == false and
  // no loss outputs (generation, one process).
  void logits(const std::vector<int>& rows, float* out);

  // Sum of squared gradients this rank contributes to the model's norm: split parameters always,
  // tensor-parallel replicas only on tensor-parallel rank 0 (Megatron counts each parameter once).
  double local_grad_sum_squares() const;
  // Sums the gradients of replicated parameters that are partial per rank (sequence parallelism).
  void reduce_partial_replica_grads();
  // Parameters of the whole model (all tensor-parallel ranks), from the local shapes.
  int64_t num_params_on_rank() const;

 private:
  GptConfig cfg_;
  TensorParallel tp_;
  ParamStore store_;
  Workspace ws_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::pair<int, int>> layer_params_;
  LmHead* head_ = nullptr;
  std::vector<std::vector<Tensor>> hidden_;  // [slot][boundary]: the output of layer i
  Tensor grad_a_, grad_b_;                   // ping-pong gradients of the residual stream
  Tensor partial_grads_;                     // staging for reduce_partial_replica_grads
};

}  // namespace loom
