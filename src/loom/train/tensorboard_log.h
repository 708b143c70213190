#pragma once
// What `loom train` writes to TensorBoard: Megatron's training_log and evaluate_and_print_results
// scalars under Megatron's tags (to --tensorboard-dir), and DeepSpeed's engine scalars under DeepSpeed's
// (to the JSON's tensorboard output_path/job_name). Only the last rank writes, as Megatron's
// get_tensorboard_writer: it holds the loss. Every call only queues records (see EventWriter).
#include <cstdint>
#include <memory>
#include <string_view>

#include "loom/train/tensorboard_args.h"

namespace loom {

class EventWriter;
class Timers;

// One iteration's figures, as training_log gets them.
struct TensorBoardStep {
  int64_t iteration = 0;         // after the step
  int64_t consumed_samples = 0;  // after the step
  int64_t batch_size = 0;
  int world_size = 1;
  double loss = 0;
  bool skipped = false;  // no update: Megatron has no grad norm then
  double grad_norm = 0;
  double num_zeros = -1, params_norm = -1;  // written when >= 0
  double learning_rate = 0, loss_scale = 1;
  bool fp16 = false;      // DeepSpeed writes its loss scale only then
  int interval_iterations = 1;  // iterations since the timers were reset (Megatron's normalizer)
};

class RunTensorBoard {
 public:
  // Checks the directories on every rank (UserError if one cannot be written) and opens the files on
  // the writing rank.
  RunTensorBoard(const TensorBoardArgs& a, int rank, int world_size);
  ~RunTensorBoard();

  // After each iteration, before its log lines: at every --tensorboard-log-interval Megatron's scalars
  // (lm loss, learning-rate, batch-size, loss-scale, world-size, grad-norm, timers, memory, each also
  // "vs samples" except timers and memory); DeepSpeed's every iteration.
  void step(const TensorBoardStep& s, const Timers& timers);
  // At a log interval, with --log-timers-to-tensorboard: 'iteration-time' in seconds.
  void iteration_time(int64_t iteration, double seconds);
  // A validation (or test) loss: 'lm loss validation' and, with --log-validation-ppl-to-tensorboard,
  // 'lm loss validation ppl' = exp(min(20, loss)), each also "vs samples".
  void validation(int64_t iteration, int64_t consumed_samples, double loss);
  // Any further scalar of training_log by tag (e.g. 'params-norm', 'num-zeros'), with its 'vs samples'
  // twin, at --tensorboard-log-interval: call it after each iteration as step() is called.
  void training_scalar(std::string_view tag, double value, int64_t iteration, int64_t consumed_samples) {
    if (megatron_due(iteration)) scalar(tag, value, iteration, consumed_samples);
  }

 private:
  bool megatron_due(int64_t iteration) const { return megatron_ >= 0 && iteration % a_.log_interval == 0; }
  // tag at `iteration` and tag + " vs samples" at `consumed_samples`, to the Megatron file if any.
  void scalar(std::string_view tag, double value, int64_t iteration, int64_t consumed_samples);

  TensorBoardArgs a_;
  std::unique_ptr<EventWriter> writer_;
  int megatron_ = -1, deepspeed_ = -1;  // file ids, -1: not written (by this rank)
};

}  // namespace loom
