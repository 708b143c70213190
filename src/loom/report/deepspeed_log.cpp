// DeepSpeed engine lines (see log_parsers.h).
#include <cstdlib>

#include "loom/report/log_parsers.h"

namespace loom::report {

namespace {

// The number after `key` in `s` (up to the next ',' ']' or space), or "".
std::string field_after(const std::string& s, const std::string& key) {
  const auto p = s.find(key);
  if (p == std::string::npos) return "";
  const auto b = p + key.size();
  const auto e = s.find_first_of(", ]", b);
  return s.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

int64_t to_int(const std::string& s, bool* ok) {
  char* end = nullptr;
  const int64_t v = std::strtoll(s.c_str(), &end, 10);
  *ok = !s.empty() && end == s.c_str() + s.size();
  return v;
}

}  // namespace

bool DeepSpeedParser::line(const std::string& text) {
  // "[Rank 0] step=100, skipped=0, lr=[1.5e-06, 1.5e-06], mom=[...]": every steps_per_print steps.
  if (text.find("] step=") != std::string::npos && text.find("[Rank 0]") != std::string::npos) {
    bool ok;
    const int64_t step = to_int(field_after(text, "] step="), &ok);
    if (!ok) return false;
    table_.set(step, "skipped_total", field_after(text, " skipped="));
    table_.set(step, "lr", field_after(text, " lr=["));
    matched_++;
    return true;
  }
  // "[timer.py:166:stop] 0/100, SamplesPerSec=421.75204796909713": epoch/step, throughput since start.
  if (const auto p = text.find(", SamplesPerSec="); p != std::string::npos) {
    const auto slash = text.rfind('/', p);
    const auto space = text.rfind(' ', slash);
    if (slash == std::string::npos || space == std::string::npos) return false;
    bool ok;
    const int64_t step = to_int(text.substr(slash + 1, p - slash - 1), &ok);
    if (!ok) return false;
    table_.set(step, "samples_per_s", field_after(text, "SamplesPerSec="));
    matched_++;
    return true;
  }
  return false;
}

}  // namespace loom::report
