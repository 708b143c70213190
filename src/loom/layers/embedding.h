#pragma once
// Word + learned position embedding followed by (hidden) dropout, as Megatron's LanguageModelEmbedding.
#include <vector>

#include "loom/layers/layer.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/models/gpt_config.h"

namespace loom {

class EmbeddingLayer : public Layer {
 public:
  EmbeddingLayer(const GptConfig& cfg, ParamStore& store, Workspace* ws);
  std::string name() const override { return "embedding"; }
  void allocate(int batch, int seq, int slots) override;
  void forward(const StepContext& ctx, const Tensor& in, Tensor& out) override;
  void backward(const StepContext& ctx, const Tensor& dout, Tensor& din) override;
  void init_params(uint64_t seed) override;

  Param& word() { return store_.at(word_); }
  Param& position() { return store_.at(pos_); }

 private:
  GptConfig cfg_;
  ParamStore& store_;
  Workspace* ws_;
  int word_, pos_;
};

}  // namespace loom
