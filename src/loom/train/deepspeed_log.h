#pragma once
// The lines DeepSpeed itself prints in a run configured by a DeepSpeed JSON (--deepspeed-config), in the
// formats of reference log 001 (DeepSpeed 0.3.8):
//   [2020-12-11 23:59:47,853] [INFO] [config.py:644:print] DeepSpeedEngine configuration:
//   [...] [INFO] [config.py:648:print]   gradient_clipping ............ 1.0         (dots to column 29)
//   [...] [INFO] [config.py:655:print]   json = {...}   (json.dumps(sort_keys=True, indent=4, separators=(',', ':')))
//   [...] [INFO] [logging.py:60:log_dist] [Rank 0] step=100, skipped=0, lr=[1.5e-06, 1.5e-06], mom=[(0.9, 0.999), (0.9, 0.999)]
//   [...] [INFO] [timer.py:166:stop] 0/100, SamplesPerSec=421.75204796909713
// every steps_per_print steps, and with "wall_clock_breakdown": true after every step
//   rank=0 time (ms) | optimizer_gradients: 29.68 | optimizer_step: 53.87 | optimizer_allgather: 5.07
// The configuration and SamplesPerSec are DeepSpeed's view of the JSON: train_batch_size is the JSON's
// micro batch x accumulation x world size and SamplesPerSec counts that batch per step (as in log 001,
// where the JSON's 96 and Megatron's --batch-size 24 differ). Nothing is printed without a JSON.
#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace loom {

struct TrainArgs;
class Timers;

class DeepSpeedLog {
 public:
  DeepSpeedLog(const TrainArgs& a, int world_size, int rank);
  bool enabled() const { return enabled_; }
  // The engine configuration and the JSON (rank 0), before the first step.
  void print_config() const;
  // After iteration `step` (1-based): `lr` the learning rate after it, `skipped` whether the loss scaler skipped it.
  void after_step(int64_t step, double lr, bool skipped, const Timers& timers);

 private:
  std::string prefix(const char* where) const;  // "[date time,ms] [INFO] [where] "
  bool enabled_ = false;
  int rank_ = 0, world_ = 1;
  nlohmann::json j_;
  int64_t steps_per_print_ = 10, micro_batch_ = 1, accumulation_ = 1;
  bool wall_clock_ = false;
  double beta1_ = 0.9, beta2_ = 0.999;
  double init_scale_ = 4294967296.0, min_scale_ = 1;
  int64_t window_ = 1000, hysteresis_ = 2;
  int log_interval_ = 1;
  int64_t skipped_total_ = 0;
  // SamplesPerSec: DeepSpeed's ThroughputTimer leaves the first two steps out of its average.
  std::chrono::steady_clock::time_point last_;
  double timed_s_ = 0;
  int64_t timed_steps_ = 0;
  double prev_grad_ms_ = 0, prev_opt_ms_ = 0, prev_copy_ms_ = 0;
};

}  // namespace loom
