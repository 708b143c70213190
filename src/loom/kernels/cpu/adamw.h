#pragma once
// AdamW as Megatron's (apex FusedAdam with adam_w_mode, i.e. torch.optim.AdamW):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
// step is t, counted from 1. Vectorised and threaded over n.
#include "loom/core/dtype.h"

namespace loom::cpu {

struct AdamWConfig {
  float lr, beta1, beta2, eps, weight_decay;
  long step;
  // The gradient is read as (g x grad_unscale) x grad_clip, two roundings: Megatron's in-place unscale
  // and clip of the main gradients, without their two passes over memory.
  float grad_unscale = 1.0f, grad_clip = 1.0f;
};

// rounded (optional): each updated weight is also stored there in rounded_type, the mixed-precision model's
// copy of the fp32 main weights, bit for bit what from_f32 of the updated weights would write.
void adamw_step(float* param, const float* grad, float* m, float* v, long n, const AdamWConfig& c,
                void* rounded = nullptr, DType rounded_type = DType::F32);

// Sum of squares of n floats in double precision (gradient norms).
double sum_squares(const float* x, long n);
// x *= s
void scale_inplace(float* x, long n, float s);

}  // namespace loom::cpu
