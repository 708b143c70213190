#pragma once
// Final LayerNorm, output layer (tied to the word embedding, as Megatron's GPT by default) and the
// masked token-mean cross-entropy. Forward and the loss gradient are fused: in training the forward
// already produces d(loss)/d(LayerNorm output) chunk by chunk, so the N x V logits never exist.
#include <vector>

#include "loom/layers/layer.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/models/gpt_config.h"

namespace loom {

class LmHead : public Layer {
 public:
  // output_weight: index in `store` of the [V, h] output weight (the word embedding when tied).
  LmHead(const GptConfig& cfg, ParamStore& store, Workspace* ws, int output_weight);
  std::string name() const override { return "output_layer"; }
  void allocate(int batch, int seq, int slots) override;
  void forward(const StepContext& ctx, const Tensor& in, Tensor& out) override;
  void backward(const StepContext& ctx, const Tensor& dout, Tensor& din) override;
  void init_params(uint64_t seed) override;

  // Generation: logits [rows.size(), V] of the chosen rows of `in` (final LayerNorm applied).
  void logits(const Tensor& in, const std::vector<int>& rows, float* out);

 private:
  struct Saved {
    Tensor input, normed, mean, rstd;
    Tensor dnormed;      // gradient of the LayerNorm output, computed in the forward
    Tensor token_loss;   // [rows]
    Tensor row_scale;    // [rows]
  };
  GptConfig cfg_;
  ParamStore& store_;
  Workspace* ws_;
  int ln_w_, ln_b_, out_w_;
  std::vector<Saved> saved_;
};

}  // namespace loom
