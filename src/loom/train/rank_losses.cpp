#include "loom/train/rank_losses.h"

#include <cmath>

namespace loom {

RankLossCheck::RankLossCheck(dist::Communicator* dp)
    : dp_(dp && dp->size() > 1 ? dp : nullptr), losses_(size_t(dp ? dp->size() : 1), 0.0f) {}

void RankLossCheck::gather(float local_loss) {
  if (dp_) dp_->all_gather(&local_loss, losses_.data(), 1);
  else losses_[0] = local_loss;
}

bool RankLossCheck::any_nan() const {
  for (float v : losses_)
    if (std::isnan(v)) return true;
  return false;
}

bool RankLossCheck::any_inf() const {
  for (float v : losses_)
    if (std::isinf(v)) return true;
  return false;
}

double RankLossCheck::mean() const {
  double s = 0;
  for (float v : losses_) s += v;
  return s / double(losses_.size());
}

std::string RankLossCheck::warning_line() const {
  const bool nan = any_nan(), inf = any_inf();
  if (!nan && !inf) return "";
  return std::string(" ==================== loss_isnan = ") + (nan ? "True" : "False") +
         ",  loss_isinf = " + (inf ? "True" : "False") + " ==================== ";
}

}  // namespace loom
