#pragma once
// SGD as Megatron's --optimizer sgd (torch.optim.SGD with momentum and weight decay, no dampening, no
// Nesterov), one step over n elements:
//   d = g + wd * p;  buf = first ? d : momentum * buf + d;  p = p - lr * d'   (d' = buf, or d without momentum)
// with torch's roundings: the decay and the parameter update are fused multiply-adds (ATen's add with
// alpha), the momentum product is rounded before its sum. `first`: the buffer does not exist yet (torch
// clones d into it). Vectorised and threaded over n; every element is computed alone, so the result does
// not depend on the number of threads.
namespace loom::cpu {

struct SgdConfig {
  float lr, momentum, weight_decay;
  bool first;  // the first step: the momentum buffer takes d as it is
};

// momentum_buf may be null when c.momentum == 0 (torch keeps no buffer then).
void sgd_step(float* param, const float* grad, float* momentum_buf, long n, const SgdConfig& c);

}  // namespace loom::cpu
