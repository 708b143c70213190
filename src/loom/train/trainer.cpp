#include "loom/train/trainer.h"

#include "loom/core/rng.h"

namespace loom {

Trainer::Trainer(GptModel& model, AdamW& optimizer, LrScheduler& scheduler, TrainStepOptions opt, Timers& timers)
    : model_(model), opt_(optimizer), sched_(scheduler), o_(opt), timers_(timers), buffer_(opt.micro_batch, opt.seq) {}

double Trainer::forward_backward_loaded(uint64_t rng_key, float loss_grad_scale) {
  double loss_sum = 0, mask_sum = 0;
  StepContext ctx;
  ctx.mb = &buffer_.micro_batch();
  ctx.training = true;
  ctx.rng_key = rng_key;
  ctx.loss_grad_scale = loss_grad_scale;
  ctx.loss_sum = &loss_sum;
  ctx.mask_sum = &mask_sum;
  {
    TimerScope t(timers_, "forward-compute");
    model_.forward(ctx);
  }
  {
    TimerScope t(timers_, "backward-compute");
    model_.backward(ctx);
  }
  return mask_sum > 0 ? loss_sum / mask_sum : 0.0;
}

std::pair<double, double> Trainer::optimizer_step() {
  TimerScope t(timers_, "optimizer");
  double norm;
  {
    TimerScope c(timers_, "optimizer-clip-main-grad");
    norm = o_.clip_grad > 0 ? clip_grad_norm(model_.params(), o_.clip_grad) : grad_norm(model_.params());
  }
  const double lr = sched_.lr();
  opt_.step(lr);
  return {norm, lr};
}

StepResult Trainer::train_step(const SampleSet& data, int64_t consumed, int64_t iteration) {
  model_.params().zero_grads();
  const int M = o_.num_micro_batches;
  double loss = 0;
  for (int m = 0; m < M; m++) {
    {
      TimerScope t(timers_, "batch-generator");
      buffer_.load(data, consumed + int64_t(m) * o_.micro_batch, o_.batch);
    }
    // Dropout masks are a function of (seed, iteration, micro-batch) only.
    loss += forward_backward_loaded(stream_key(o_.seed, 0xD0, uint64_t(iteration), uint64_t(m)), 1.0f / float(M));
  }
  StepResult r;
  r.loss = loss / M;
  std::tie(r.grad_norm, r.lr) = optimizer_step();
  sched_.step(int64_t(M) * o_.micro_batch);
  return r;
}

double Trainer::evaluate(const SampleSet& data, int64_t first_sample, int iters) {
  double total = 0;
  const int M = o_.num_micro_batches;
  for (int it = 0; it < iters; it++) {
    for (int m = 0; m < M; m++) {
      buffer_.load(data, first_sample + (int64_t(it) * M + m) * o_.micro_batch, o_.batch);
      double loss_sum = 0, mask_sum = 0;
      StepContext ctx;
      ctx.mb = &buffer_.micro_batch();
      ctx.training = false;
      ctx.loss_sum = &loss_sum;
      ctx.mask_sum = &mask_sum;
      model_.forward(ctx);
      total += mask_sum > 0 ? loss_sum / mask_sum : 0.0;
    }
  }
  return iters > 0 ? total / (double(iters) * M) : 0.0;
}

}  // namespace loom
