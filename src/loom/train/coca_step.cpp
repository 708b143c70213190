#include "loom/train/coca_step.h"

#include <chrono>
#include <cmath>

#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/optim/adamw.h"
#include "loom/optim/loss_scaler.h"
#include "loom/parallel/reduce_in_fp32.h"

namespace loom {

namespace {
double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

CocaStep::CocaStep(CocaModel& model, AdamW& optimizer, GradScaler* scaler, std::shared_ptr<dist::Communicator> dp,
                   double clip_norm)
    : model_(model), optimizer_(optimizer), scaler_(scaler), dp_(std::move(dp)), clip_norm_(clip_norm) {
  if (model_.params().storage().grads != DType::F32) staging_ = Tensor({int64_t(1) << 20});
}

void CocaStep::average_gradients() {
  ParamStore& ps = model_.params();
  if (!dp_ || dp_->size() <= 1 || !ps.grads_whole()) return;  // ZeRO-2: reduce-scattered by the store
  all_reduce_in_fp32(*dp_, ps.grad_storage(), ps.storage().grads, ps.numel(), staging_,
                     float(1.0 / double(dp_->size())));
}

double CocaStep::global_grad_norm_scaled() const {
  const ParamStore& ps = model_.params();
  double s = 0;
  for (const Segment& seg : ps.grad_segments()) s += cpu::sum_squares(ps.grad_data(seg), ps.storage().grads, long(seg.count));
  // Whole gradients are the same on every rank after the average; slices (ZeRO-2) sum over the group.
  if (dp_ && dp_->size() > 1 && !ps.grads_whole()) dp_->all_reduce(&s, 1);
  return std::sqrt(s);
}

CocaStepResult CocaStep::run(const float* images, const int32_t* text, int B, double lr) {
  CocaStepResult r;
  ParamStore& ps = model_.params();
  const float scale = scaler_ ? scaler_->scale() : 1.0f;
  r.scale_before = r.scale_after = scale;
  auto t = std::chrono::steady_clock::now();
  ps.zero_grads();
  r.losses = model_.forward(images, text, B, scale);
  r.forward_ms = ms_since(t);

  t = std::chrono::steady_clock::now();
  model_.backward(scale);
  r.backward_inner_ms = ms_since(t);
  t = std::chrono::steady_clock::now();
  average_gradients();
  r.backward_allreduce_ms = ms_since(t);

  t = std::chrono::steady_clock::now();
  const double inv = scaler_ ? double(scaler_->inv_scale()) : 1.0;
  r.grad_norm = global_grad_norm_scaled() * inv;
  const bool overflow = !std::isfinite(r.grad_norm);
  if (scaler_) scaler_->update(overflow);
  if (overflow) {
    // fp16: the loss scale backs off. Without a scaler a non-finite gradient would only poison the
    // weights: the step is skipped as well and the run counts it (EVA-CLIP's loss_isnan check).
    r.skipped = true;
  } else {
    // DeepSpeed's clip_grad_norm: coefficient max_norm / (norm + 1e-6) when below 1.
    float clip = 1.0f;
    if (clip_norm_ > 0) {
      const double c = clip_norm_ / (r.grad_norm + 1e-6);
      if (c < 1.0) clip = float(c);
    }
    r.optimizer_gradients_ms = ms_since(t);
    auto u = std::chrono::steady_clock::now();
    optimizer_.inner_step(lr, float(inv), clip);
    r.optimizer_step_ms = ms_since(u);
    u = std::chrono::steady_clock::now();
    optimizer_.copy_main_to_model();
    model_.clamp_logit_scale();
    r.optimizer_allgather_ms = ms_since(u);
  }
  if (scaler_) r.scale_after = scaler_->scale();
  r.step_ms = ms_since(t);
  return r;
}

}  // namespace loom
