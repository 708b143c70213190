#pragma once
// One process's training step and evaluation, Megatron's semantics:
//  - an iteration is a global batch split into micro-batches, each forward then backward, gradients
//    summed with every micro-batch's loss weighted 1/M;
//  - the reported loss is the mean of the micro-batch losses;
//  - then gradient clipping on the global norm, an AdamW step with the scheduler's learning rate, and
//    the scheduler advanced by the global batch (in samples).
#include <cstdint>

#include "loom/models/gpt.h"
#include "loom/optim/adamw.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/train/batch.h"
#include "loom/train/timers.h"

namespace loom {

struct TrainStepOptions {
  int micro_batch = 1, num_micro_batches = 1, seq = 0;
  double clip_grad = 1.0;
  uint64_t seed = 1234;
  BatchOptions batch;
};

struct StepResult {
  double loss = 0;       // mean over micro-batches of the masked token-mean loss
  double grad_norm = 0;  // before clipping
  double lr = 0;         // the learning rate the update used
};

class Trainer {
 public:
  Trainer(GptModel& model, AdamW& optimizer, LrScheduler& scheduler, TrainStepOptions opt, Timers& timers);

  // One iteration on samples [consumed, consumed + global batch) of `data`.
  StepResult train_step(const SampleSet& data, int64_t consumed, int64_t iteration);
  // Forward-only and gradient-free step over samples already in the batch buffer, for tests and parity:
  // runs micro-batches whose samples the callback fills.
  double evaluate(const SampleSet& data, int64_t first_sample, int iters);

  BatchBuffer& batch_buffer() { return buffer_; }
  // One micro-batch forward+backward on the samples currently in the batch buffer; returns its loss.
  double forward_backward_loaded(uint64_t rng_key, float loss_grad_scale);
  // After accumulating gradients: clip, step, schedule. Returns (grad norm, lr used).
  std::pair<double, double> optimizer_step();

 private:
  GptModel& model_;
  AdamW& opt_;
  LrScheduler& sched_;
  TrainStepOptions o_;
  Timers& timers_;
  BatchBuffer buffer_;
};

}  // namespace loom
