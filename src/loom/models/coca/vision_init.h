#pragma once
// The initialisers EVA-CLIP and open_clip use for the vision side of CoCa, drawn like Loom's other
// initialisers from a counter-based stream keyed by (seed, parameter name), so every layout starts from
// the same model. Each writes the parameter's fp32 view (valid between ParamStore::acquire and commit).
#include <cstdint>

#include "loom/layers/param_store.h"

namespace loom::coca_init {

// timm's trunc_normal_(std, a=-2, b=2): normal(0, std) truncated to the ABSOLUTE interval [-2, 2] (timm's
// bounds are not in units of std, so for std 0.02 nothing is ever cut), by redrawing values outside it.
void trunc_normal(Param& p, uint64_t seed, float std);
// uniform(-bound, bound): PyTorch's default Linear/Conv2d init (kaiming_uniform_(a=sqrt 5) gives
// bound = 1/sqrt(fan_in), and the bias the same bound) and xavier_uniform_ (bound sqrt(6/(fan_in+fan_out))).
void uniform(Param& p, uint64_t seed, float bound);
void normal(Param& p, uint64_t seed, float std);
void constant(Param& p, float value);

}  // namespace loom::coca_init
