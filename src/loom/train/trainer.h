#pragma once
// One rank's training step and evaluation, Megatron's semantics:
//  - an iteration is a global batch; each data-parallel rank runs its micro-batches (forward then
//    backward), gradients summed with every micro-batch's loss weighted 1/M, then averaged over the
//    data-parallel group (bucketed, overlapped with the last backward);
//  - the reported loss is the mean of all micro-batch losses of all data-parallel ranks;
//  - then gradient clipping on the model's global norm (over tensor-parallel shards, each parameter
//    counted once), an AdamW step with the scheduler's learning rate, and the scheduler advanced by the
//    global batch (in samples).
#include <cstdint>
#include <memory>

#include "loom/models/decoder_model.h"
#include <optional>

#include "loom/optim/adamw.h"
#include "loom/optim/loss_scaler.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/train/batch.h"
#include "loom/train/pipeline_runner.h"
#include "loom/train/timers.h"

namespace loom {

namespace dist {
class Communicator;
}
class GradReducer;

struct TrainStepOptions {
  int micro_batch = 1, num_micro_batches = 1, seq = 0;  // micro-batches per data-parallel rank
  // A batch-size ramp-up: every count (at most num_micro_batches) a training step may be given.
  std::vector<int> micro_batch_counts;
  double clip_grad = 1.0;
  uint64_t seed = 1234;
  BatchOptions batch;
  // Data parallelism (null / size 1: none).
  std::shared_ptr<dist::Communicator> dp;
  int dp_rank = 0, dp_size = 1;
  std::vector<GradReducer*> reducers;  // one per model chunk (may be empty)
  // Model parallelism: the group over which the gradient norm is summed (tensor x pipeline), the
  // embedding group (first and last pipeline stage) and the pipeline layout.
  std::shared_ptr<dist::Communicator> model_parallel, embedding;
  PipelineLayout pipeline;
  // Mixed precision: the loss scaler (null: none; it reacts to overflow of the stored fp16 gradients),
  // and the group that agrees on an overflow (all ranks).
  GradScaler* scaler = nullptr;
  std::shared_ptr<dist::Communicator> world;
  // Megatron's --log-num-zeros-in-grad and --log-params-norm: the iteration's count of zero gradient
  // elements (after unscaling, before the update) and the L2 norm of the weights after it.
  bool log_num_zeros = false, log_params_norm = false;
};

struct StepResult {
  double loss = 0;       // mean over micro-batches of the masked token-mean loss
  double grad_norm = 0;  // before clipping
  double lr = 0;         // the learning rate the update used
  bool skipped = false;  // the loss scaler found inf/NaN gradients: no update, no schedule step
  double num_zeros = -1;    // --log-num-zeros-in-grad (-1: not counted)
  double params_norm = -1;  // --log-params-norm (-1: not computed)
};

class Trainer {
 public:
  Trainer(DecoderModel& model, AdamW& optimizer, LrScheduler& scheduler, TrainStepOptions opt, Timers& timers);
  // Pipeline parallelism: this rank's model chunks (virtual stages) and one optimizer per chunk.
  Trainer(std::vector<DecoderModel*> chunks, std::vector<AdamW*> optimizers, LrScheduler& scheduler, TrainStepOptions opt,
          Timers& timers);

  // One iteration on samples [consumed, consumed + global batch) of `data`, the global batch being
  // `num_micro` micro-batches per data-parallel rank (-1: num_micro_batches; a ramp-up gives fewer).
  StepResult train_step(const SampleSet& data, int64_t consumed, int64_t iteration, int num_micro = -1);
  // Mean validation loss over `iters` global batches starting at sample `first_sample`.
  double evaluate(const SampleSet& data, int64_t first_sample, int iters);

  BatchBuffer& batch_buffer() { return buffer_; }
  // One micro-batch forward+backward on the samples currently in the batch buffer; returns its loss.
  // `last` marks the iteration's last micro-batch (its backward starts the data-parallel reduction).
  double forward_backward_loaded(uint64_t rng_key, float loss_grad_scale, bool last = true);
  // After accumulating gradients: reduce, unscale and check, clip, step. Returns (grad norm, lr used), or
  // nothing when the loss scaler skips the iteration.
  std::optional<std::pair<double, double>> optimizer_step();
  // Sums a per-rank statistic of the gradients (or, with weights, of the weights) over the ranks that
  // hold different parts of them: ZeRO slices over data parallelism, then the model-parallel group.
  double sum_over_model(double local, bool sharded) const;
  double num_zeros_ = -1;  // of the last optimizer_step
  float loss_scale() const;
  // Mean of a per-rank value over the data-parallel group.
  double dp_mean(double v) const;
  PipelineRunner* pipeline() { return runner_.get(); }
  bool is_last_stage() const { return o_.pipeline.rank == o_.pipeline.size - 1; }

 private:
  int64_t first_sample(int64_t consumed, int micro) const;
  uint64_t dropout_stream(int64_t iteration, int micro) const;
  void all_reduce_embedding_grads();

  std::vector<DecoderModel*> chunks_;
  std::vector<AdamW*> opts_;
  DecoderModel& model_;  // chunks_[0]
  LrScheduler& sched_;
  TrainStepOptions o_;
  Timers& timers_;
  BatchBuffer buffer_;
  std::unique_ptr<PipelineRunner> runner_;
};

}  // namespace loom
