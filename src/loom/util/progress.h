#pragma once
// Progress of long work (tokenising a corpus, reading or writing large checkpoint files) on stderr:
// a bar redrawn in place on a terminal, one plain line every few seconds otherwise (a log file, CI).
// Nothing at all for work that ends within the first seconds, so quick runs print exactly what they did
// before. Under mpirun only rank 0 reports. Thread-safe: workers may call add() concurrently; printing
// never blocks them.
//
// Environment: LOOM_PROGRESS=off|plain|tty overrides the choice by isatty(stderr);
// LOOM_PROGRESS_DELAY (seconds before the first report, default 2) and LOOM_PROGRESS_INTERVAL (seconds
// between reports, default 0.2 on a terminal, 5 otherwise).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace loom {

class Progress {
 public:
  // `what` names the work ("preprocess", "reading model.safetensors"); `total_bytes` (0: unknown) gives
  // the percentage and ETA; `items` names what add()'s second argument counts ("documents"), if anything.
  Progress(std::string what, uint64_t total_bytes, std::string items = "");
  ~Progress();  // ends a terminal line left open (an error is on its way)
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t bytes, uint64_t items = 0);
  // The closing report (only when something was shown already).
  void finish();

  bool enabled() const { return mode_ != Mode::Off; }

 private:
  enum class Mode { Off, Plain, Tty };
  using Clock = std::chrono::steady_clock;
  void report(bool final);
  std::string what_, items_name_;
  uint64_t total_;
  Mode mode_;
  double delay_s_, interval_s_;
  std::atomic<uint64_t> bytes_{0}, items_{0};
  std::atomic<int64_t> next_report_ns_;  // since start_
  Clock::time_point start_;
  std::mutex print_;
  bool shown_ = false, finished_ = false;
};

// Checkpoint files are written in the background during training, where a progress line would cut into
// the log; `loom convert` turns write progress on for its own (foreground) writes.
void set_report_file_writes(bool on);
bool report_file_writes();

}  // namespace loom
