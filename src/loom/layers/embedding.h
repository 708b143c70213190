#pragma once
// Word (+ learned position, when the model has them) embedding followed by (hidden) dropout, as
// Megatron's LanguageModelEmbedding. RoPE models have no position table.
// Tensor parallel: the word table is split by vocabulary rows (VocabParallelEmbedding: each rank looks
// up the tokens it holds, the partial rows are summed over the group); the position table is replicated.
// With sequence parallelism the output keeps only this rank's token rows.
#include <vector>

#include "loom/layers/layer.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/layers/transformer_config.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

class EmbeddingLayer : public Layer {
 public:
  EmbeddingLayer(const ModelConfig& cfg, ParamStore& store, Workspace* ws, TensorParallel tp);
  std::string name() const override { return "embedding"; }
  void allocate(int batch, int seq, int slots) override;
  void forward(const StepContext& ctx, const Tensor& in, Tensor& out) override;
  // The lookup's gradient (a scatter-add, memory-bound) in the input half; nothing is left for the weight half.
  void backward_input(const StepContext& ctx, const Tensor& dout, Tensor& din) override;
  void backward_weight(const StepContext&) override {}
  void init_params(uint64_t seed) override;

  Param& word() { return store_.at(word_); }
  Param& position() { return store_.at(pos_); }  // learned positions only
  int vocab_start() const { return vocab_start_; }

 private:
  ModelConfig cfg_;
  ParamStore& store_;
  Workspace* ws_;
  TensorParallel tp_;
  int word_, pos_ = -1;
  int vocab_start_, vocab_end_;
};

}  // namespace loom
