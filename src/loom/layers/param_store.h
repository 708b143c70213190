#pragma once
// All trainable parameters of a model live in one flat fp32 buffer, and their gradients in another of
// the same layout. Layers register named parameters, then finalize() allocates both buffers and hands
// out views. One buffer makes the optimizer a single vectorised pass, the gradient norm a single
// reduction, and data-parallel buckets and ZeRO shards plain ranges of it.
#include <cstdint>
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

// How a parameter held by this process relates to the full tensor of the model: a slice along one
// dimension (tensor parallelism), or the whole tensor. Checkpoints, initialisation and resharding work
// in terms of the full tensor, so every layout builds the same model.
struct ParamSplit {
  std::vector<int64_t> global_shape;  // empty: same as the local shape
  int dim = -1;                       // the split dimension, -1 when not split
  int64_t offset = 0;                 // start of this slice along `dim`
  // A replicated parameter whose gradient is only partial on each tensor-parallel rank (sequence
  // parallelism: LayerNorms and row-parallel biases see a slice of the tokens): summed over the group.
  bool tp_partial_grad = false;
  // A copy of another parameter held by a different pipeline stage (the output layer's word embedding on
  // the last stage): initialised, loaded and saved as that one, its gradient summed with it over the
  // embedding group, and left out of the gradient norm so it is counted once.
  std::string tied_to;
};

struct Param {
  std::string name;              // Megatron-core state-dict name, e.g. decoder.layers.0.mlp.linear_fc1.weight
  std::vector<int64_t> shape;    // local shape
  ParamSplit split;
  bool weight_decay = true;      // Megatron: no decay on biases and norm parameters
  int64_t offset = 0;            // element offset into the flat buffers
  Tensor value, grad;            // views, valid after finalize()
  int64_t numel() const { return shape_numel(shape); }
  const std::vector<int64_t>& global_shape() const { return split.global_shape.empty() ? shape : split.global_shape; }
  // Replicated on every tensor-parallel rank (counted once in norms and parameter counts).
  bool tp_replicated() const { return split.dim < 0; }
  // The name the full model knows this parameter by (checkpoints, initialisation streams).
  const std::string& canonical_name() const { return split.tied_to.empty() ? name : split.tied_to; }
};

class ParamStore {
 public:
  // Returns a stable index; the Param's tensors are usable after finalize().
  int add(std::string name, std::vector<int64_t> shape, bool weight_decay, ParamSplit split = {});
  // multiple: the flat buffers' length is padded to a multiple of this (ZeRO shards them evenly).
  void finalize(int64_t multiple = 16);

  Param& at(int i) { return params_[i]; }
  const Param& at(int i) const { return params_[i]; }
  Param* find(const std::string& name);
  std::vector<Param>& all() { return params_; }
  const std::vector<Param>& all() const { return params_; }
  int64_t numel() const { return total_; }
  float* values() const { return values_.f32(); }
  float* grads() const { return grads_.f32(); }
  void zero_grads() { grads_.zero(); }

 private:
  std::vector<Param> params_;
  int64_t total_ = 0;
  Tensor values_, grads_;
  bool finalized_ = false;
};

}  // namespace loom
