#include "loom/train/timers.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

namespace loom {

namespace {
// The order Megatron's training_log adds timers to its line.
const std::vector<std::string> kOrder = {
    "forward-backward", "forward-compute", "forward-recv", "forward-send",
    "forward-backward-send-forward-backward-recv", "backward-compute", "backward-recv", "backward-send",
    "backward-send-forward-recv", "backward-send-backward-recv", "backward-params-all-reduce",
    "backward-embedding-all-reduce", "optimizer-copy-to-main-grad", "optimizer-unscale-and-check-inf",
    "optimizer-clip-main-grad", "optimizer-count-zeros", "optimizer-inner-step", "optimizer-copy-main-to-model-params",
    "optimizer", "batch-generator"};
}  // namespace

void Timers::start(const std::string& name) {
  Timer& t = timers_[name];
  if (t.running) throw std::logic_error("timer " + name + " started twice");
  t.running = true;
  t.began = std::chrono::steady_clock::now();
}

void Timers::stop(const std::string& name) {
  Timer& t = timers_[name];
  if (!t.running) throw std::logic_error("timer " + name + " stopped while not running");
  t.total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t.began).count();
  t.running = false;
}

double Timers::elapsed_ms(const std::string& name) const {
  auto it = timers_.find(name);
  return it == timers_.end() ? 0.0 : it->second.total_ms;
}

const std::vector<std::string>& Timers::log_order() { return kOrder; }

std::string Timers::log_line(double normalizer) {
  std::string line = "time (ms)";
  char buf[128];
  for (const auto& name : kOrder) {
    auto it = timers_.find(name);
    if (it == timers_.end()) continue;
    std::snprintf(buf, sizeof buf, " | %s: %.2f", name.c_str(), it->second.total_ms / normalizer);
    line += buf;
  }
  reset();
  return line;
}

void Timers::reset() {
  for (auto& [name, t] : timers_) t.total_ms = 0;
}

}  // namespace loom
