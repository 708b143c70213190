#pragma once
// AdamW over a model's ParamStore: fp32 moments in flat buffers laid out like the parameters; weight
// decay per parameter (Megatron: none on biases and norms).
#include <cstdint>

#include "loom/core/tensor.h"
#include "loom/layers/param_store.h"

namespace loom {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  AdamW(ParamStore& params, AdamWOptions opt);
  // One update with learning rate lr; advances the step count.
  void step(double lr);
  int64_t steps() const { return step_; }
  void set_steps(int64_t s) { step_ = s; }
  Tensor& exp_avg() { return m_; }
  Tensor& exp_avg_sq() { return v_; }
  const AdamWOptions& options() const { return opt_; }

 private:
  ParamStore& params_;
  AdamWOptions opt_;
  Tensor m_, v_;
  int64_t step_ = 0;
};

// Megatron's clip_grad_norm_fp32 given the model's total norm: coeff = max_norm / (norm + 1e-6);
// gradients scaled when coeff < 1.
void clip_grads(ParamStore& params, double norm, double max_norm);

}  // namespace loom
