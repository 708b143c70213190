#pragma once
// CLIP's learnable temperature is kept in [0, ln 100] after every optimizer step (open_clip / EVA-CLIP:
// `with torch.no_grad(): model.logit_scale.clamp_(0, math.log(100))`).
#include "loom/layers/param_store.h"

namespace loom {

// math.log(100) as torch converts the bound for a float32 tensor.
constexpr float kLogitScaleMax = float(4.605170185988092);

// v clamped to [0, ln 100]; NaN stays NaN (as torch.clamp).
inline float clamp_logit_scale(float v) { return v < 0.f ? 0.f : v > kLogitScaleMax ? kLogitScaleMax : v; }

// Clamps the stored weights of parameter `index` (after the optimizer step and its all-gather): the
// model's copy, as EVA-CLIP's DeepSpeed run does (its fp32 master weight inside ZeRO is not clamped;
// half-precision stores here keep the optimizer's main weight unclamped the same way, and fp32 stores,
// updated in place, are the weight). Under ZeRO-3 each rank clamps the slice it holds.
void clamp_logit_scale(ParamStore& store, int index);

}  // namespace loom
