#pragma once
// LayerNorm or RMSNorm over the hidden size (TransformerConfig::normalization), with its parameters:
// weight (initialised to 1) and, for LayerNorm, bias (0). Per-token, so it runs on whatever rows this
// rank holds (a sequence-parallel shard included); under sequence parallelism its parameter gradients are
// partial per rank and summed over the group by the model.
#include <string>

#include "loom/layers/param_store.h"
#include "loom/layers/transformer_config.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

class Norm {
 public:
  Norm() = default;
  // Registers `prefix`.weight (and `prefix`.bias) in the store.
  Norm(const TransformerConfig& cfg, ParamStore& store, const std::string& prefix, const TensorParallel& tp,
       int width = 0);
  void init_params() const;
  // y = norm(x) over `rows` rows; mean (LayerNorm only) and rstd are saved for the backward.
  void forward(const float* x, float* y, float* mean, float* rstd, int rows) const;
  // dx += d/dx; parameter gradients accumulate.
  void backward(const float* dy, const float* x, const float* mean, const float* rstd, float* dx, int rows) const;
  bool has_mean() const { return kind_ == NormKind::LayerNorm; }

 private:
  ParamStore* store_ = nullptr;
  NormKind kind_ = NormKind::LayerNorm;
  float eps_ = 1e-5f;
  int width_ = 0, weight_ = -1, bias_ = -1;
};

}  // namespace loom
