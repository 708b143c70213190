#include "loom/train/trainer.h"

#include <cmath>

#include "loom/core/rng.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/data_parallel.h"

namespace loom {

Trainer::Trainer(GptModel& model, AdamW& optimizer, LrScheduler& scheduler, TrainStepOptions opt, Timers& timers)
    : model_(model), opt_(optimizer), sched_(scheduler), o_(opt), timers_(timers), buffer_(opt.micro_batch, opt.seq) {}

int64_t Trainer::first_sample(int64_t consumed, int micro) const {
  // Megatron's MegatronPretrainingSampler: each step of micro_batch x dp samples is split by rank.
  return consumed + int64_t(micro) * o_.micro_batch * o_.dp_size + int64_t(o_.dp_rank) * o_.micro_batch;
}

double Trainer::forward_backward_loaded(uint64_t rng_key, float loss_grad_scale, bool last) {
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
    GradReducer* r = o_.reducer && o_.reducer->active() ? o_.reducer : nullptr;
    if (r && last) {
      r->begin_last_backward();
      model_.backward(ctx, [r](int layer) { r->after_layer(layer); });
    } else {
      model_.backward(ctx);
    }
  }
  return mask_sum > 0 ? loss_sum / mask_sum : 0.0;
}

double Trainer::dp_mean(double v) const {
  if (o_.dp && o_.dp_size > 1) o_.dp->all_reduce(&v, 1);
  return v / o_.dp_size;
}

std::pair<double, double> Trainer::optimizer_step() {
  if (o_.reducer && o_.reducer->active()) {
    TimerScope t(timers_, "backward-params-all-reduce");
    o_.reducer->finish();
  }
  model_.reduce_partial_replica_grads();
  TimerScope t(timers_, "optimizer");
  double norm;
  {
    TimerScope c(timers_, "optimizer-clip-main-grad");
    double sq = model_.local_grad_sum_squares();
    const TensorParallel& tp = model_.tensor_parallel();
    if (tp.active()) tp.comm->all_reduce(&sq, 1);
    norm = std::sqrt(sq);
    clip_grads(model_.params(), norm, o_.clip_grad);
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
      buffer_.load(data, first_sample(consumed, m), o_.batch);
    }
    // Dropout masks are a function of (seed, iteration, global micro-batch) only, whatever the layout.
    const uint64_t global_micro = uint64_t(m) * uint64_t(o_.dp_size) + uint64_t(o_.dp_rank);
    loss += forward_backward_loaded(stream_key(o_.seed, 0xD0, uint64_t(iteration), global_micro),
                                    1.0f / float(M), m == M - 1);
  }
  StepResult r;
  r.loss = dp_mean(loss / M);
  std::tie(r.grad_norm, r.lr) = optimizer_step();
  sched_.step(int64_t(M) * o_.micro_batch * o_.dp_size);
  return r;
}

double Trainer::evaluate(const SampleSet& data, int64_t first, int iters) {
  double total = 0;
  const int M = o_.num_micro_batches;
  for (int it = 0; it < iters; it++) {
    for (int m = 0; m < M; m++) {
      buffer_.load(data, first_sample(first + int64_t(it) * M * o_.micro_batch * o_.dp_size, m), o_.batch);
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
  return iters > 0 ? dp_mean(total / (double(iters) * M)) : 0.0;
}

}  // namespace loom
