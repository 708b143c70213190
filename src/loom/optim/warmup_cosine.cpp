#include "loom/optim/warmup_cosine.h"

#include <cmath>

#include "loom/optim/param_groups.h"

namespace loom {

double evaclip_warmup_cosine_lr(double base_lr, int64_t warmup, int64_t total_steps, int64_t step) {
  if (step < warmup) return base_lr * double(step + 1) / double(warmup);
  const double e = double(step - warmup), es = double(total_steps - warmup);
  // es is 0 only when total == warmup, where no step reaches this branch inside the run.
  if (es <= 0) return 0.0;
  return 0.5 * (1.0 + std::cos(M_PI * e / es)) * base_lr;
}

void evaclip_group_lrs(const ParamGroupTable& t, int64_t warmup, int64_t total_steps, int64_t step,
                       std::vector<double>& out) {
  out.resize(t.groups.size());
  for (size_t g = 0; g < t.groups.size(); g++)
    out[g] = t.groups[g].lr_scale * evaclip_warmup_cosine_lr(t.groups[g].lr, warmup, total_steps, step);
}

}  // namespace loom
