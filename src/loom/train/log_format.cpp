#include "loom/train/log_format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace loom {

namespace {
std::string fmt(const char* f, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, args...);
  return buf;
}
}  // namespace

std::string now_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string format_iteration_line(const IterationLog& l) {
  std::string s = " [" + l.timestamp + "]";
  s += fmt(" iteration %8lld/%8lld |", (long long)l.iteration, (long long)l.train_iters);
  s += fmt(" consumed samples: %12lld |", (long long)l.consumed_samples);
  if (l.skipped_samples > 0) s += fmt(" skipped samples: %12lld |", (long long)l.skipped_samples);
  s += fmt(" elapsed time per iteration (ms): %.1f |", l.elapsed_ms);
  // Megatron prints TFLOP/s with one decimal; CPU rates need three to say anything.
  s += fmt(" throughput per GPU (TFLOP/s/GPU): %.3f |", l.tflops);
  s += fmt(" tokens per second per GPU: %.1f |", l.tokens_per_s);
  s += fmt(" learning rate: %.6E |", l.learning_rate);
  s += fmt(" global batch size: %5lld |", (long long)l.global_batch_size);
  if (l.has_loss) s += fmt(" lm loss: %.6E |", l.lm_loss);
  s += fmt(" loss scale: %.1f |", l.loss_scale);
  if (l.has_grad_norm) s += fmt(" grad norm: %.3f |", l.grad_norm);
  if (l.num_zeros >= 0) s += fmt(" num zeros: %.1f |", l.num_zeros);
  if (l.params_norm >= 0) s += fmt(" params norm: %.3f |", l.params_norm);
  s += fmt(" number of skipped iterations: %3d |", l.skipped);
  s += fmt(" number of nan iterations: %3d |", l.nan_iterations);
  return s;
}

std::string format_param_count_line(int tp_rank, int pp_rank, int64_t count) {
  return fmt(" > number of parameters on (tensor, pipeline) model parallel rank (%d, %d): %lld", tp_rank, pp_rank,
             (long long)count);
}

std::string format_validation_block(const std::string& prefix, double lm_loss) {
  const double ppl = std::exp(std::min(20.0, lm_loss));
  std::string s = " validation loss at " + prefix + " | ";
  s += fmt("lm loss value: %.6E | ", lm_loss);
  s += fmt("lm loss PPL: %.6E | ", ppl);
  const std::string dashes(s.size() + 1, '-');
  return dashes + "\n" + s + "\n" + dashes;
}

std::string format_memory_line(int rank, int64_t iteration, double allocated_mb, double max_allocated_mb,
                               double reserved_mb, double max_reserved_mb) {
  // Megatron prints the raw float division (Python's repr); we print the same quantities to 4 decimals.
  return fmt("[Rank %d] (after %lld iterations) memory (MB) | allocated: %.4f | max allocated: %.4f | "
             "reserved: %.1f | max reserved: %.1f",
             rank, (long long)iteration, allocated_mb, max_allocated_mb, reserved_mb, max_reserved_mb);
}

std::string format_model_states_line(int rank, double weights_mb, double grads_mb, double optimizer_mb,
                                     double working_mb) {
  return fmt("[Rank %d] model states (MB) | weights: %.4f | gradients: %.4f | optimizer: %.4f | total: %.4f | "
             "working buffers: %.4f",
             rank, weights_mb, grads_mb, optimizer_mb, weights_mb + grads_mb + optimizer_mb, working_mb);
}

std::string format_activations_line(int rank, int in_flight, double total_mb) {
  return fmt("[Rank %d] activations (MB) | micro-batches in flight: %d | total: %.4f", rank, in_flight, total_mb);
}

}  // namespace loom
