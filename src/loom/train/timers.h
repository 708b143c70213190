#pragma once
// Megatron-style named timers: start/stop accumulate wall time; the timer line prints the ones used
// since the last print, averaged over the log interval, in Megatron's fixed order.
#include <chrono>
#include <map>
#include <string>

namespace loom {

class Timers {
 public:
  void start(const std::string& name);
  void stop(const std::string& name);
  double elapsed_ms(const std::string& name) const;  // accumulated since the last reset
  // "time (ms) | forward-compute: 12.34 | ..." with each value divided by `normalizer`; resets.
  std::string log_line(double normalizer);
  void reset();

 private:
  struct Timer {
    double total_ms = 0;
    bool running = false;
    std::chrono::steady_clock::time_point began;
  };
  std::map<std::string, Timer> timers_;
};

// RAII scope for a timer.
class TimerScope {
 public:
  TimerScope(Timers& t, const char* name) : t_(t), name_(name) { t_.start(name_); }
  ~TimerScope() { t_.stop(name_); }
  TimerScope(const TimerScope&) = delete;
  TimerScope& operator=(const TimerScope&) = delete;

 private:
  Timers& t_;
  const char* name_;
};

}  // namespace loom
