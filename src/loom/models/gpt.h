#pragma once
// Megatron's GPT as an ordered list of layers: [embedding, block 0 .. block L-1, output head].
// The model owns the parameters (one ParamStore), the residual-stream activations between layers for
// each micro-batch slot, and the scratch the layers share. A pipeline stage will own a slice of the list.
#include <memory>
#include <vector>

#include "loom/layers/layer.h"
#include "loom/layers/lm_head.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/models/gpt_config.h"

namespace loom {

class GptModel {
 public:
  // Activations are reserved for micro-batches of up to batch x seq tokens in `slots` slots.
  GptModel(const GptConfig& cfg, int batch, int seq, int slots = 1);

  const GptConfig& config() const { return cfg_; }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  std::vector<std::unique_ptr<Layer>>& layers() { return layers_; }

  void init(uint64_t seed);
  // Forward through every layer; the head adds the micro-batch's loss to ctx.loss_sum / mask_sum and,
  // when ctx.training, prepares the loss gradient.
  void forward(const StepContext& ctx);
  // Backward through every layer in reverse, accumulating parameter gradients.
  void backward(const StepContext& ctx);
  // Logits [rows.size(), padded vocab] at the given rows after a forward with ctx.training == false
  // (generation). The forward's micro-batch must have come with labels and a loss mask.
  void logits(const std::vector<int>& rows, float* out);

  int max_rows() const { return max_rows_; }

 private:
  GptConfig cfg_;
  ParamStore store_;
  Workspace ws_;
  std::vector<std::unique_ptr<Layer>> layers_;
  LmHead* head_ = nullptr;
  std::vector<std::vector<Tensor>> hidden_;  // [slot][boundary]: the output of layer i
  Tensor grad_a_, grad_b_;                   // ping-pong gradients of the residual stream
  int max_rows_ = 0;
};

}  // namespace loom
