// Megatron's log lines, in all the forms the reference logs show (see log_parsers.h).
#include <cstdlib>

#include "loom/report/log_parsers.h"

namespace loom::report {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::vector<std::string> split_fields(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const auto bar = text.find('|', start);
    std::string f = trim(text.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (!f.empty()) out.push_back(f);
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

namespace {

// "key: value" (Megatron) or "key value" (Megatron v1); false when the value is not a number.
bool key_value(const std::string& field, std::string* key, std::string* value) {
  auto sep = field.find(": ");
  size_t skip = 2;
  if (sep == std::string::npos) {
    sep = field.rfind(' ');
    skip = 1;
    if (sep == std::string::npos) return false;
  }
  *key = trim(field.substr(0, sep));
  *value = trim(field.substr(sep + skip));
  double v;
  return !key->empty() && parse_number(*value, &v);
}

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// The iteration line's field names -> the report's columns.
std::string iteration_column(const std::string& key) {
  if (key == "consumed samples") return "consumed_samples";
  if (key == "elapsed time per iteration (ms)") return "step_time_ms";
  if (key == "throughput per GPU (TFLOP/s/GPU)") return "tflops";
  if (key == "tokens per second per GPU") return "tokens_per_s";
  if (key == "learning rate") return "lr";
  if (key == "global batch size") return "global_batch_size";
  if (key == "loss scale") return "loss_scale";
  if (key == "grad norm") return "grad_norm";
  if (key == "number of skipped iterations") return "skipped_iters";
  if (key == "number of nan iterations") return "nan_iters";
  if (key == "params norm") return "params_norm";
  if (key == "num zeros") return "num_zeros";
  if (ends_with(key, "loss")) return "loss[" + key + "]";
  return key;
}

// Drops Megatron-Core's " [2025-06-28 18:42:27]" prefix.
std::string without_date(const std::string& line) {
  std::string s = trim(line);
  if (!s.empty() && s[0] == '[') {
    const auto close = s.find(']');
    if (close != std::string::npos && s.compare(close + 1, 11, " iteration ") == 0) return trim(s.substr(close + 1));
  }
  return s;
}

// "iteration       18/    1000" -> 18.
bool iteration_number(const std::string& field, int64_t* it) {
  if (field.rfind("iteration ", 0) != 0) return false;
  const std::string rest = trim(field.substr(10));
  const auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) return false;
  char* end = nullptr;
  const std::string n = rest.substr(0, slash);
  *it = std::strtoll(n.c_str(), &end, 10);
  return end == n.c_str() + n.size();
}

// "after 18 iterations" anywhere in the line -> 18.
bool after_iterations(const std::string& line, int64_t* it) {
  const auto a = line.find("after ");
  if (a == std::string::npos) return false;
  char* end = nullptr;
  *it = std::strtoll(line.c_str() + a + 6, &end, 10);
  return end != line.c_str() + a + 6 && std::string(end).rfind(" iterations", 0) == 0;
}

}  // namespace

bool MegatronParser::line(const std::string& text) {
  const std::string s = without_date(text);
  if (s.rfind("iteration ", 0) == 0) {
    const auto fields = split_fields(s);
    int64_t it;
    if (fields.size() < 2 || !iteration_number(fields[0], &it)) return false;
    for (size_t i = 1; i < fields.size(); i++) {
      std::string key, value;
      if (!key_value(fields[i], &key, &value)) continue;
      if (key == "tokens per second per GPU") loom_fields_ = true;
      table_.set(it, iteration_column(key), value);
    }
    last_iteration_ = it;
    matched_++;
    return true;
  }
  // Timers of the iteration just logged (not DeepSpeed's per-step `rank=0 time (ms)` lines).
  if (s.rfind("time (ms) |", 0) == 0) {
    if (last_iteration_ < 0) return false;  // set-up timers, before training
    const auto fields = split_fields(s);
    for (size_t i = 1; i < fields.size(); i++) {
      std::string key, value;
      if (key_value(fields[i], &key, &value) && fields[i].find(": ") != std::string::npos)
        table_.set(last_iteration_, "time_ms[" + key + "]", value);
    }
    matched_++;
    return true;
  }
  // "[Rank 0] (after 18 iterations) memory (MB) | allocated: ..." and v1's "after 5 iterations memory (MB)
  // | ... | cached: ...": the largest figure over the ranks that print one.
  if (s.find("memory (MB) |") != std::string::npos) {
    int64_t it;
    if (!after_iterations(s, &it)) return false;
    const auto fields = split_fields(s);
    for (size_t i = 1; i < fields.size(); i++) {
      std::string key, value;
      if (!key_value(fields[i], &key, &value)) continue;
      std::string column;
      if (key == "allocated") column = "mem_allocated_mb";
      if (key == "max allocated") column = "mem_max_allocated_mb";
      if (key == "reserved" || key == "cached") column = "mem_reserved_mb";
      if (key == "max reserved" || key == "max cached") column = "mem_max_reserved_mb";
      if (!column.empty()) table_.set_max(it, column, value);
    }
    matched_++;
    return true;
  }
  // " validation loss at iteration 10 [on validation set|on test set] | lm loss value: X | lm loss PPL: Y |"
  // and v1's "| LM loss: X | LM PPL: Y".
  if (s.rfind("validation loss at iteration ", 0) == 0) {
    const auto fields = split_fields(s);
    // The first field is trimmed: "validation loss at iteration |" leaves it 28 characters, no number.
    constexpr size_t kPrefix = 29;  // "validation loss at iteration "
    if (fields.empty() || fields[0].size() <= kPrefix) return false;
    const char* number = fields[0].c_str() + kPrefix;
    char* end = nullptr;
    const int64_t it = std::strtoll(number, &end, 10);
    if (end == number) return false;
    const std::string prefix = std::string(end).find("test set") != std::string::npos ? "test_" : "valid_";
    for (size_t i = 1; i < fields.size(); i++) {
      std::string key, value;
      if (!key_value(fields[i], &key, &value)) continue;
      if (ends_with(key, " value")) key = key.substr(0, key.size() - 6);
      if (ends_with(key, " PPL")) {
        std::string base = key.substr(0, key.size() - 4);
        if (!ends_with(base, "loss")) base += " loss";
        table_.set(it, prefix + "ppl[" + base + "]", value);
      } else {
        table_.set(it, prefix + "loss[" + key + "]", value);
      }
    }
    matched_++;
    return true;
  }
  return false;
}

}  // namespace loom::report
