#pragma once
// Lines the DeepSpeed engine prints, as free functions shared by the GPT (DeepSpeedLog) and CoCa runs, in
// the formats of reference logs 000 (DeepSpeed 0.8.2) and 001 (0.3.8):
//   [2024-02-20 10:10:34,404] [INFO] [stage_1_and_2.py:1784:step] [deepspeed] OVERFLOW! Rank 0 Skipping step.
//       Attempted loss scale: 65536, reducing to 32768.0
//   [...] [INFO] [logging.py:77:log_dist] [Rank 0] rank=0 time (ms) | forward: 364.60 | backward: 1038.75 | ...
#include <string>
#include <utility>
#include <vector>

namespace loom {

// "[YYYY-MM-DD HH:MM:SS,mmm] [INFO] [where] " at the current local time.
std::string deepspeed_prefix(const char* where);

// DeepSpeed's loss scale as Python prints it: its DynamicLossScaler starts from the int 2**power and
// becomes a float once divided or multiplied ("65536", then "32768.0", "65536.0").
struct DeepSpeedScale {
  double value = 0;
  bool is_float = false;
  std::string repr() const;
};

// The message after the prefix: "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: P, reducing to N".
std::string deepspeed_overflow_message(int rank, const DeepSpeedScale& attempted, const DeepSpeedScale& now);

// "rank=0 time (ms) | name: 12.34 | name: ..." (wall_clock_breakdown), timers in milliseconds.
std::string deepspeed_timer_message(int rank, const std::vector<std::pair<std::string, double>>& timers_ms);

}  // namespace loom
