#pragma once
// Final norm (LayerNorm or RMSNorm), output layer (tied to the word embedding, as Megatron's GPT by
// default, or its own weight) and the
// masked token-mean cross-entropy. Forward and the loss gradient are fused: in training the forward
// already produces d(loss)/d(LayerNorm output) chunk by chunk, so the N x V logits never exist.
// Tensor parallel: the output layer is split by vocabulary like the embedding and the cross-entropy is
// Megatron's vocab-parallel one: per-row max, exp-sum and target logit are combined over the group, so
// no rank ever holds a row's full logits.
// The output weight's gradient is formed in the forward too, chunk by chunk; with deferred weight
// gradients (zero-bubble) the forward keeps the micro-batch's logit gradients instead ([rows, V/T] per
// slot) and backward_weight forms it from them, over the same chunks in the same order.
#include <vector>

#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/layers/layer.h"
#include "loom/layers/norm.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/layers/transformer_config.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

class LmHead : public Layer {
 public:
  // output_weight: index in `store` of this rank's [V/T, h] output weight (the word embedding when tied),
  // registered by the model,
  // whose first row is vocabulary id vocab_start.
  LmHead(const ModelConfig& cfg, ParamStore& store, Workspace* ws, TensorParallel tp, int output_weight, int vocab_start);
  std::string name() const override { return "output_layer"; }
  void allocate(int batch, int seq, int slots) override;
  void forward(const StepContext& ctx, const Tensor& in, Tensor& out) override;
  void backward_input(const StepContext& ctx, const Tensor& dout, Tensor& din) override;  // the final norm
  void backward_weight(const StepContext& ctx) override;  // the output weight, when deferred
  void init_params(uint64_t seed) override;

  // Generation (one process): logits [rows.size(), V] of the chosen rows of `in`.
  void logits(const Tensor& in, const std::vector<int>& rows, float* out);

 private:
  struct Saved {
    Tensor input, normed, mean, rstd;
    Tensor normed_full;  // all token rows (sequence parallel; else `normed`)
    Tensor dnormed;      // gradient of the LayerNorm output, computed in the forward ([local rows, h])
    Tensor dfull;        // its per-rank partial over all rows before the group sum (tensor parallel)
    Tensor token_loss;   // [rows]
    Tensor row_scale;    // [rows]
    Tensor dlogits;      // [rows, V/T]: the logit gradients (deferred weight gradients only)
  };
  cpu::LmHeadScratch head_scratch() const;
  ModelConfig cfg_;
  ParamStore& store_;
  Workspace* ws_;
  TensorParallel tp_;
  Norm norm_;
  int out_w_, vocab_start_;
  std::vector<Saved> saved_;
};

}  // namespace loom
