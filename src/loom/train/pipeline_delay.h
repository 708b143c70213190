#pragma once
// A straggler for tests and benchmarks: LOOM_PIPELINE_DELAY="stage=S,prob=P,ms=T" (or frac=F instead of
// ms: a fraction of the pass's own compute time; seed=N picks another draw) makes pipeline stage S sleep
// after a forward or backward pass with probability P. The draws are a function of (seed, stage, pass
// counter) only, so a run's delays are the same every time, and the tensor-parallel ranks of the stage
// straggle together, like one slow device would.
// With link=1 the link into stage S is slow instead: a message S receives (an activation or a gradient)
// arrives, with probability P, T ms late (ms= only), while S may compute. Those draws are a function of
// (seed, stage, run, micro-batch, chunk, direction), so every schedule is sent the same late messages and
// an A/B comparison of schedules sees the same link.
#include <cstdint>
#include <string>

namespace loom {

class PipelineDelay {
 public:
  // Parses the variable's value (empty: no delay); bad text is a UserError naming the variable.
  static PipelineDelay parse(const std::string& spec);
  static PipelineDelay from_environment();  // LOOM_PIPELINE_DELAY

  bool active_on(int stage) const { return stage_ >= 0 && stage == stage_; }
  // Sleeps, or not, after a pass of `pass_us` microseconds on `stage`; returns the microseconds slept
  // (never with link=1).
  double after_pass(int stage, double pass_us);
  bool link() const { return link_; }
  // link=1: how late (microseconds) the message of (run, micro, chunk, kind: 0 activation, 1 gradient)
  // reaches `stage`; 0 on other stages and without link=1.
  double message_delay_us(int stage, uint64_t run, int micro, int chunk, int kind) const;

 private:
  int stage_ = -1;
  double prob_ = 0, ms_ = 0, frac_ = 0;
  uint64_t seed_ = 1, passes_ = 0;
  bool link_ = false;
};

}  // namespace loom
