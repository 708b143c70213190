#pragma once
// EVA-CLIP's per-step loss check (training/train.py train_one_epoch): every rank's total loss is
// all-gathered, and when any is NaN or infinite each rank logs
//    ==================== loss_isnan = True,  loss_isinf = False ====================
// (a leading space, two spaces after the comma; the values are torch's 0-dim bool tensors formatted as
// Python bools). The step goes on as EVA-CLIP's does; what to do about it is the caller's (the fp16 loss
// scaler skips overflowing steps on its own).
//
// The gathered losses also give the loss worth logging: their mean is the loss one process would compute
// on the whole global batch (every rank's local batch having the same size, as CoCa's ClipLoss needs),
// so it does not depend on the data-parallel layout. EVA-CLIP itself logs rank 0's local loss
// (losses()[0]), which does.
#include <string>
#include <vector>

#include "loom/dist/communicator.h"

namespace loom {

class RankLossCheck {
 public:
  // dp: the group whose losses are compared (EVA-CLIP: the world); null means one process.
  explicit RankLossCheck(dist::Communicator* dp);

  // Collective over dp: gathers every rank's `local_loss`, in rank order. No allocation.
  void gather(float local_loss);

  const std::vector<float>& losses() const { return losses_; }
  bool any_nan() const;
  bool any_inf() const;
  double mean() const;  // in rank order, in double

  // The warning line above (without the logging prefix), or "" when every loss is finite.
  std::string warning_line() const;

 private:
  dist::Communicator* dp_;
  std::vector<float> losses_;
};

}  // namespace loom
