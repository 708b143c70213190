#include "loom/train/deepspeed_progress.h"

#include <cmath>

#include "loom/optim/param_groups.h"  // python_float_list
#include "loom/util/cli.h"            // python_float

namespace loom {

std::string deepspeed_step_message(int64_t step, int64_t skipped, const std::vector<double>& lrs, double beta1,
                                   double beta2) {
  const std::string mom = "[" + python_float(beta1) + ", " + python_float(beta2) + "]";
  std::string moms = "[";
  for (size_t g = 0; g < lrs.size(); g++) moms += (g ? ", " : "") + mom;
  return "[Rank 0] step=" + std::to_string(step) + ", skipped=" + std::to_string(skipped) +
         ", lr=" + python_float_list(lrs) + ", mom=" + moms + "]";
}

namespace {
std::string gib(int64_t bytes) {
  // Python's round(bytes / 1024**3, 2): the double nearest the value rounded to two decimals.
  return python_float(std::round(double(bytes) / double(1ll << 30) * 100.0) / 100.0) + "GB";
}
}  // namespace

std::string deepspeed_throughput_message(int64_t epoch, int64_t micro_step, int64_t global_step, double running_avg,
                                         double current, const MemoryStats& memory) {
  return "epoch=" + std::to_string(epoch) + "/micro_step=" + std::to_string(micro_step) +
         "/global_step=" + std::to_string(global_step) + ", RunningAvgSamplesPerSec=" + python_float(running_avg) +
         ", CurrSamplesPerSec=" + python_float(current) + ", MemAllocated=" + gib(memory.allocated) +
         ", MaxMemAllocated=" + gib(memory.max_allocated);
}

void DeepSpeedThroughputTimer::start() {
  started_ = true;
  if (global_steps_ >= kStartStep) {
    timing_ = true;
    t0_ = std::chrono::steady_clock::now();
  }
}

std::string DeepSpeedThroughputTimer::stop(const MemoryStats& memory, double seconds) {
  if (!started_) return "";
  started_ = false;
  micro_steps_++;
  global_steps_++;  // one micro-batch a step (EVA-CLIP's CoCa: no accumulation)
  if (!timing_) return "";
  if (seconds < 0) seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  total_s_ += seconds;
  if (steps_per_print_ <= 0 || global_steps_ % steps_per_print_ != 0) return "";
  const double running = double(batch_size_) / (total_s_ / double(global_steps_ - kStartStep));
  return deepspeed_throughput_message(0, micro_steps_, global_steps_, running, double(batch_size_) / seconds, memory);
}

}  // namespace loom
