#pragma once
// One CoCa optimizer step as DeepSpeed's engine runs it for EVA-CLIP (reference log 000): forward (both
// losses), backward of loss_scale x objective, the data-parallel gradient average (ZeRO-2: done by the
// store's reduce-scatter during the backward), the global gradient norm of the unscaled gradients, the
// fp16 overflow check (a non-finite norm skips the step and backs the loss scale off), clipping to
// --grad-clip-norm, the optimizer update with this step's learning rate, and EVA-CLIP's clamp of
// logit_scale. Timed in DeepSpeed's wall-clock-breakdown fields. Allocates nothing per step.
#include <cstdint>
#include <memory>

#include "loom/core/tensor.h"
#include "loom/models/coca/coca_model.h"

namespace loom {

class AdamW;
class GradScaler;
namespace dist {
class Communicator;
}

struct CocaStepResult {
  CocaLosses losses;          // this rank's
  double grad_norm = 0;       // global, of the unscaled gradients, before clipping
  bool skipped = false;       // overflow: no update
  float scale_before = 1, scale_after = 1;
  // DeepSpeed's timers (ms): forward, backward (= inner + allreduce), step.
  double forward_ms = 0, backward_inner_ms = 0, backward_allreduce_ms = 0, step_ms = 0;
  // Inside the step: the norm and overflow check, the update, the ZeRO all-gather of the new weights.
  double optimizer_gradients_ms = 0, optimizer_step_ms = 0, optimizer_allgather_ms = 0;
};

class CocaStep {
 public:
  // scaler: null without loss scaling. clip_norm: 0 for none.
  CocaStep(CocaModel& model, AdamW& optimizer, GradScaler* scaler, std::shared_ptr<dist::Communicator> dp,
           double clip_norm);
  // lr: the schedule's value this step (AdamW/LAMB applies each parameter's group scale to it).
  CocaStepResult run(const float* images, const int32_t* text, int B, double lr);

 private:
  void average_gradients();
  double global_grad_norm_scaled() const;

  CocaModel& model_;
  AdamW& optimizer_;
  GradScaler* scaler_;
  std::shared_ptr<dist::Communicator> dp_;
  double clip_norm_;
  Tensor staging_;  // fp32 chunk for reducing half-precision gradients
};

}  // namespace loom
