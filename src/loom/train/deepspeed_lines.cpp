#include "loom/train/deepspeed_lines.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>

#include "loom/util/cli.h"

namespace loom {

std::string deepspeed_prefix(const char* where) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  std::tm tm{};
  const std::time_t secs = tv.tv_sec;
  localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[160];
  std::snprintf(out, sizeof out, "[%s,%03d] [INFO] [%s] ", buf, int(tv.tv_usec / 1000), where);
  return out;
}

std::string DeepSpeedScale::repr() const {
  if (is_float) return python_float(value);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", value);
  return buf;
}

std::string deepspeed_overflow_message(int rank, const DeepSpeedScale& attempted, const DeepSpeedScale& now) {
  return "[deepspeed] OVERFLOW! Rank " + std::to_string(rank) + " Skipping step. Attempted loss scale: " +
         attempted.repr() + ", reducing to " + now.repr();
}

std::string deepspeed_timer_message(int rank, const std::vector<std::pair<std::string, double>>& timers_ms) {
  std::string s = "rank=" + std::to_string(rank) + " time (ms)";
  char buf[64];
  for (const auto& [name, ms] : timers_ms) {
    std::snprintf(buf, sizeof buf, "%.2f", ms);
    s += " | " + name + ": " + buf;
  }
  return s;
}

}  // namespace loom
