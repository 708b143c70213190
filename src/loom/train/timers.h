#pragma once
// Megatron-style named timers: start/stop accumulate wall time; the timer line prints the ones used
// since the last print, averaged over the log interval, in Megatron's fixed order.
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace loom {

class Timers {
 public:
  void start(const std::string& name);
  void stop(const std::string& name);
  double elapsed_ms(const std::string& name) const;  // accumulated since the last reset
  // "time (ms) | forward-compute: 12.34 | ..." with each value divided by `normalizer`; resets.
  std::string log_line(double normalizer);
  void reset();
  // f(name, ms accumulated since the last reset) for each timer the log line shows, in its order.
  template <class F>
  void for_each_logged(F&& f) const {
    for (const auto& name : log_order())
      if (auto it = timers_.find(name); it != timers_.end()) f(name, it->second.total_ms);
  }

 private:
  static const std::vector<std::string>& log_order();
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
