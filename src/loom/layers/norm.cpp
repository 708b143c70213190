#include "loom/layers/norm.h"

#include "loom/kernels/cpu/layernorm.h"
#include "loom/kernels/cpu/rmsnorm.h"
#include "loom/layers/init.h"

namespace loom {

Norm::Norm(const TransformerConfig& cfg, ParamStore& store, const std::string& prefix, const TensorParallel& tp,
           int width)
    : store_(&store), kind_(cfg.normalization), eps_(cfg.layernorm_epsilon), width_(width ? width : cfg.hidden_size) {
  // Replicated; under sequence parallelism each rank's gradient covers only its tokens.
  const ParamSplit replicated{{}, -1, 0, tp.sequence_parallel && tp.active(), {}};
  weight_ = store.add(prefix + ".weight", {width_}, false, replicated);
  if (kind_ == NormKind::LayerNorm) bias_ = store.add(prefix + ".bias", {width_}, false, replicated);
}

void Norm::init_params() const {
  init_constant(store_->at(weight_), 1.f);
  if (bias_ >= 0) init_constant(store_->at(bias_), 0.f);
}

void Norm::forward(const float* x, float* y, float* mean, float* rstd, int rows) const {
  const float* w = store_->at(weight_).value.f32();
  if (kind_ == NormKind::LayerNorm)
    cpu::layernorm_forward(x, w, store_->at(bias_).value.f32(), y, mean, rstd, rows, width_, eps_);
  else
    cpu::rmsnorm_forward(x, w, y, rstd, rows, width_, eps_);
}

void Norm::backward(const float* dy, const float* x, const float* mean, const float* rstd, float* dx, int rows) const {
  const Param& w = store_->at(weight_);
  if (kind_ == NormKind::LayerNorm)
    cpu::layernorm_backward(dy, x, w.value.f32(), mean, rstd, dx, w.grad.f32(), store_->at(bias_).grad.f32(), rows,
                            width_);
  else
    cpu::rmsnorm_backward(dy, x, w.value.f32(), rstd, dx, w.grad.f32(), rows, width_);
}

}  // namespace loom
