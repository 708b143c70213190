#pragma once
// EVA-CLIP's learning-rate schedule (training/scheduler.py warmup_cosine_lr), applied every step before
// the forward pass with the step index i = batches_per_epoch * epoch + batch:
//   step < warmup: lr = base * (step + 1) / warmup
//   else:          lr = 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup))) * base
// per group with its tower's base lr, then param_group["lr"] = lr_scale * lr. All in double, in
// Python's order of operations, so the values equal the ones DeepSpeed prints (`lr=[...]`).
#include <cstdint>
#include <vector>

namespace loom {

struct ParamGroupTable;

double evaclip_warmup_cosine_lr(double base_lr, int64_t warmup, int64_t total_steps, int64_t step);

// Every group's lr at `step` into `out` (resized to the group count once; no allocation afterwards).
void evaclip_group_lrs(const ParamGroupTable& t, int64_t warmup, int64_t total_steps, int64_t step,
                       std::vector<double>& out);

}  // namespace loom
