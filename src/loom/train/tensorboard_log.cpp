#include "loom/train/tensorboard_log.h"

#include <algorithm>
#include <cmath>

#include "loom/core/allocator.h"
#include "loom/train/run_logging.h"
#include "loom/train/timers.h"
#include "loom/util/event_writer.h"

namespace loom {

RunTensorBoard::RunTensorBoard(const TensorBoardArgs& a, int rank, int world_size) : a_(a) {
  a_.validate();
  a_.check_dirs();
  if (rank != world_size - 1 || (a_.dir.empty() && !a_.deepspeed_enabled)) return;
  writer_ = std::make_unique<EventWriter>(size_t(a_.queue_size));
  if (!a_.dir.empty()) megatron_ = writer_->open(a_.dir);
  if (a_.deepspeed_enabled) deepspeed_ = writer_->open(a_.deepspeed_dir());
}

RunTensorBoard::~RunTensorBoard() = default;

void RunTensorBoard::scalar(std::string_view tag, double value, int64_t iteration, int64_t consumed_samples) {
  if (megatron_ < 0) return;
  writer_->add_scalar(megatron_, tag, value, iteration);
  writer_->add_scalar(megatron_, tag, value, consumed_samples, " vs samples");
}

void RunTensorBoard::step(const TensorBoardStep& s, const Timers& timers) {
  if (deepspeed_ >= 0) {
    // DeepSpeed's engine: the loss in backward() before global_samples counts this batch, the learning
    // rate and loss scale in step() after.
    writer_->add_scalar(deepspeed_, "Train/Samples/train_loss", s.loss, s.consumed_samples - s.batch_size);
    writer_->add_scalar(deepspeed_, "Train/Samples/lr", s.learning_rate, s.consumed_samples);
    if (s.fp16) writer_->add_scalar(deepspeed_, "Train/Samples/loss_scale", s.loss_scale, s.consumed_samples);
  }
  if (!megatron_due(s.iteration)) return;
  const int64_t it = s.iteration, samples = s.consumed_samples;
  if (a_.log_learning_rate) scalar("learning-rate", s.learning_rate, it, samples);
  if (a_.log_batch_size) scalar("batch-size", double(s.batch_size), it, samples);
  scalar("lm loss", s.loss, it, samples);
  if (a_.log_loss_scale) scalar("loss-scale", s.loss_scale, it, samples);
  if (a_.log_world_size) scalar("world-size", double(s.world_size), it, samples);
  if (!s.skipped) scalar("grad-norm", s.grad_norm, it, samples);
  if (!s.skipped && s.num_zeros >= 0) scalar("num-zeros", s.num_zeros, it, samples);
  if (s.params_norm >= 0) scalar("params-norm", s.params_norm, it, samples);
  if (a_.log_timers) {
    // Megatron's timers.write: seconds, averaged over the iterations since the last timer line.
    const double per = 1000.0 * std::max(1, s.interval_iterations);
    timers.for_each_logged([&](const std::string& name, double ms) {
      writer_->add_scalar(megatron_, name, ms / per, it, "-time");
    });
  }
  if (a_.log_memory) {
    const MemoryStats m = memory_stats();
    writer_->add_sampled(megatron_, "mem-reserved-bytes", [] { return resident_mb().first * 1048576.0; }, it);
    writer_->add_scalar(megatron_, "mem-allocated-bytes", double(m.allocated), it);
    writer_->add_scalar(megatron_, "mem-max-allocated-bytes", double(m.max_allocated), it);
  }
}

void RunTensorBoard::iteration_time(int64_t iteration, double seconds) {
  if (megatron_ >= 0 && a_.log_timers) writer_->add_scalar(megatron_, "iteration-time", seconds, iteration);
}

void RunTensorBoard::validation(int64_t iteration, int64_t consumed_samples, double loss) {
  scalar("lm loss validation", loss, iteration, consumed_samples);
  if (a_.log_validation_ppl) scalar("lm loss validation ppl", std::exp(std::min(20.0, loss)), iteration, consumed_samples);
}

}  // namespace loom
