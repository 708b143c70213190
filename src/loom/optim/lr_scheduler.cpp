#include "loom/optim/lr_scheduler.h"

#include <cmath>
#include <stdexcept>

namespace loom {

double LrScheduler::lr_at(int64_t n) const {
  if (s_.warmup_steps > 0 && n <= s_.warmup_steps)
    return s_.init_lr + (s_.max_lr - s_.init_lr) * double(n) / s_.warmup_steps;
  if (s_.style == "constant") return s_.max_lr;
  if (s_.style == "inverse-square-root") {
    double warm = std::max(s_.warmup_steps, 1.0);
    double num = double(std::max<int64_t>(n, 1));
    return std::max(s_.min_lr, s_.max_lr * std::sqrt(warm) / std::sqrt(num));
  }
  if (n > s_.decay_steps) return s_.min_lr;
  const double ratio = (double(n) - s_.warmup_steps) / (double(s_.decay_steps) - s_.warmup_steps);
  double coeff;
  if (s_.style == "linear")
    coeff = 1.0 - ratio;
  else if (s_.style == "cosine")
    coeff = 0.5 * (std::cos(M_PI * ratio) + 1.0);
  else
    throw std::logic_error("unknown lr decay style " + s_.style);
  return s_.min_lr + coeff * (s_.max_lr - s_.min_lr);
}

}  // namespace loom
