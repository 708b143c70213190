#include "loom/util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace loom {

namespace {

double env_seconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  return (end && *end == '\0' && s >= 0) ? s : fallback;
}

std::string fmt(const char* f, double a, double b = 0) {
  char buf[96];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

std::string clock_text(double s) {
  const long t = long(std::lround(s));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

std::atomic<bool> g_report_writes{false};

}  // namespace

void set_report_file_writes(bool on) { g_report_writes = on; }
bool report_file_writes() { return g_report_writes; }

Progress::Progress(std::string what, uint64_t total_bytes, std::string items)
    : what_(std::move(what)), items_name_(std::move(items)), total_(total_bytes), start_(Clock::now()) {
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  const char* mode = std::getenv("LOOM_PROGRESS");
  if (rank && std::strcmp(rank, "0") != 0)
    mode_ = Mode::Off;
  else if (mode && !std::strcmp(mode, "off"))
    mode_ = Mode::Off;
  else if (mode && !std::strcmp(mode, "plain"))
    mode_ = Mode::Plain;
  else if (mode && !std::strcmp(mode, "tty"))
    mode_ = Mode::Tty;
  else
    mode_ = ::isatty(STDERR_FILENO) == 1 ? Mode::Tty : Mode::Plain;
  delay_s_ = env_seconds("LOOM_PROGRESS_DELAY", 2.0);
  interval_s_ = env_seconds("LOOM_PROGRESS_INTERVAL", mode_ == Mode::Tty ? 0.2 : 5.0);
  next_report_ns_ = int64_t(delay_s_ * 1e9);
}

Progress::~Progress() {
  std::lock_guard<std::mutex> lock(print_);
  if (shown_ && !finished_ && mode_ == Mode::Tty) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
  }
}

void Progress::add(uint64_t bytes, uint64_t items) {
  const uint64_t done = bytes_ += bytes;
  items_ += items;
  // Work that is complete needs no interim report (a file read in one piece stays silent: finish()
  // speaks only after an interim report).
  if (mode_ == Mode::Off || (total_ > 0 && done >= total_)) return;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  int64_t due = next_report_ns_.load();
  if (now < due) return;
  // One thread reports; the others go on working.
  if (!next_report_ns_.compare_exchange_strong(due, now + int64_t(interval_s_ * 1e9))) return;
  std::unique_lock<std::mutex> lock(print_, std::try_to_lock);
  if (lock.owns_lock() && !finished_) report(false);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(print_);
  if (finished_) return;
  if (shown_) report(true);
  finished_ = true;
}

void Progress::report(bool final) {
  const double t = std::max(std::chrono::duration<double>(Clock::now() - start_).count(), 1e-9);
  const double mb = double(bytes_.load()) / 1048576.0, total_mb = double(total_) / 1048576.0;
  const double rate = mb / t;
  std::string items;
  if (!items_name_.empty()) items = std::to_string(items_.load()) + " " + items_name_ + ", ";
  std::string line;
  if (final) {
    line = what_ + ": " + items + fmt("%.2f MB in %.1f s", mb, t) + fmt(" (%.2f MB/s)", rate);
  } else {
    line = what_ + ": " + items;
    if (total_ > 0) {
      const double frac = std::min(1.0, mb / std::max(total_mb, 1e-12));
      if (mode_ == Mode::Tty) {
        const int width = 24, filled = int(frac * width);
        line = what_ + " [" + std::string(size_t(filled), '#') + std::string(size_t(width - filled), '-') + "] " + items;
      }
      line += fmt("%.2f of %.2f MB", mb, total_mb) + fmt(" (%.0f%%)", frac * 100) + fmt(", %.2f MB/s", rate);
      if (rate > 0 && frac < 1) line += ", ETA " + clock_text((total_mb - mb) / rate);
    } else {
      line += fmt("%.2f MB, %.2f MB/s", mb, rate);
    }
  }
  if (mode_ == Mode::Tty)
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  else
    std::fprintf(stderr, "loom: %s\n", line.c_str());
  std::fflush(stderr);
  shown_ = true;
}

}  // namespace loom
