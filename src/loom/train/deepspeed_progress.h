#pragma once
// DeepSpeed 0.8.2's progress lines (reference log 000), printed by rank 0 once at start (step=0) and then
// every steps_per_print steps:
//   [...] [INFO] [logging.py:77:log_dist] [Rank 0] step=1000, skipped=2, lr=[2.37e-06, ...], mom=[[0.9, 0.999], ...]
//   [...] [INFO] [timer.py:198:stop] epoch=0/micro_step=1000/global_step=1000, RunningAvgSamplesPerSec=1126.80...,
//       CurrSamplesPerSec=1211.28..., MemAllocated=5.29GB, MaxMemAllocated=28.74GB
// The first is the engine's (its global step and skipped count, restored on resume; one lr and one
// [beta1, beta2] per parameter group, the betas a list as the JSON gave them). The second is its
// ThroughputTimer's: it counts the steps of this process only, starts timing at the third (start_step 2),
// times from the forward to the end of the optimizer step, and counts train_batch_size samples a step;
// its epoch stays 0 because only DeepSpeed's own data loader advances it and EVA-CLIP does not use one.
// Memory is this process's tensor allocator: bytes live now and its high-water mark (PyTorch's
// memory_allocated and max_memory_allocated), in GiB rounded to two places as Python's round() prints them.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "loom/core/allocator.h"

namespace loom {

// "[Rank 0] step=S, skipped=K, lr=[...], mom=[[b1, b2], ...]" (after the prefix).
std::string deepspeed_step_message(int64_t step, int64_t skipped, const std::vector<double>& lrs, double beta1,
                                   double beta2);
// "epoch=E/micro_step=M/global_step=G, RunningAvgSamplesPerSec=R, CurrSamplesPerSec=C, MemAllocated=xGB,
// MaxMemAllocated=yGB".
std::string deepspeed_throughput_message(int64_t epoch, int64_t micro_step, int64_t global_step, double running_avg,
                                         double current, const MemoryStats& memory);

class DeepSpeedThroughputTimer {
 public:
  DeepSpeedThroughputTimer(int64_t steps_per_print, int64_t train_batch_size)
      : steps_per_print_(steps_per_print), batch_size_(train_batch_size) {}
  void start();  // before the forward
  // After the optimizer step, `seconds` of it timed from start(): the throughput message when this step is a
  // reporting boundary of the timer's own count, else empty. `seconds` < 0: time since start().
  std::string stop(const MemoryStats& memory, double seconds = -1);

 private:
  static constexpr int64_t kStartStep = 2;
  int64_t steps_per_print_, batch_size_;
  int64_t micro_steps_ = 0, global_steps_ = 0;
  bool timing_ = false, started_ = false;
  std::chrono::steady_clock::time_point t0_;
  double total_s_ = 0;
};

}  // namespace loom
