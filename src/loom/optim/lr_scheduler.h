#pragma once
// Megatron's OptimizerParamScheduler (learning-rate part), counted in samples: warmup is linear from
// init_lr to max_lr over warmup_steps, then constant / linear / cosine decay to min_lr at decay_steps,
// min_lr afterwards. step(increment) advances by the global batch after every successful iteration.
#include <cstdint>
#include <string>

namespace loom {

struct LrSchedule {
  double max_lr = 0, min_lr = 0, init_lr = 0;
  double warmup_steps = 0;   // samples; fractional when given as --lr-warmup-fraction, as in Megatron
  int64_t decay_steps = 0;   // samples
  std::string style = "linear";  // constant | linear | cosine | inverse-square-root
};

class LrScheduler {
 public:
  explicit LrScheduler(LrSchedule s) : s_(std::move(s)) {}
  double lr() const { return lr_at(num_steps_); }
  double lr_at(int64_t num_steps) const;
  void step(int64_t increment) { num_steps_ += increment; }
  int64_t num_steps() const { return num_steps_; }
  void set_num_steps(int64_t n) { num_steps_ = n; }
  const LrSchedule& schedule() const { return s_; }

 private:
  LrSchedule s_;
  int64_t num_steps_ = 0;
};

}  // namespace loom
