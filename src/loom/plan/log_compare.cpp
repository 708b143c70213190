#include "loom/plan/log_compare.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "loom/core/error.h"

namespace loom {

std::optional<double> number_after(const std::string& line, const std::string& key) {
  const size_t at = line.find(key);
  if (at == std::string::npos) return std::nullopt;
  const char* p = line.c_str() + at + key.size();
  char* end = nullptr;
  const double v = std::strtod(p, &end);
  if (end == p) return std::nullopt;
  return v;
}

std::string read_compare_log(const std::string& path) {
  std::ifstream f(path);
  require(bool(f), "cannot open --compare-log " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string comparison_header() {
  return " > prediction against the log         measured    predicted   predicted/measured\n";
}

std::string comparison_row(const char* name, double measured, double predicted, int decimals) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "   %-32s %10.*f  %10.*f   %.3f\n", name, decimals, measured, decimals, predicted,
                measured > 0 ? predicted / measured : 0.0);
  return buf;
}

double MeasuredRun::steady_elapsed_ms() const {
  if (elapsed_ms.size() <= 1) return elapsed_ms.empty() ? 0.0 : elapsed_ms[0];
  std::vector<double> v(elapsed_ms.begin() + 1, elapsed_ms.end());
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::optional<double> MeasuredRun::timer(const std::string& name) const {
  for (const auto& [n, v] : timers)
    if (n == name) return v;
  return std::nullopt;
}

MeasuredRun parse_training_log(const std::string& text) {
  MeasuredRun r;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (auto v = number_after(line, "elapsed time per iteration (ms): ")) r.elapsed_ms.push_back(*v);
    if (line.rfind("time (ms) | ", 0) == 0) {
      r.timers.clear();
      std::istringstream fields(line.substr(12));
      std::string f;
      while (std::getline(fields, f, '|')) {
        const size_t colon = f.rfind(':');
        if (colon == std::string::npos) continue;
        std::string name = f.substr(0, colon);
        name.erase(0, name.find_first_not_of(' '));
        name.erase(name.find_last_not_of(' ') + 1);
        r.timers.push_back({name, std::strtod(f.c_str() + colon + 1, nullptr)});
      }
    }
    if (line.find("] model states (MB) | ") != std::string::npos)
      if (auto v = number_after(line, "| total: ")) r.model_states_mb = std::max(r.model_states_mb.value_or(0), *v);
    if (line.find("] activations (MB) | ") != std::string::npos)
      if (auto v = number_after(line, "| total: ")) r.activations_mb = std::max(r.activations_mb.value_or(0), *v);
  }
  return r;
}

MeasuredRun read_training_log(const std::string& path) {
  MeasuredRun r = parse_training_log(read_compare_log(path));
  require(!r.elapsed_ms.empty(), path + ": no 'elapsed time per iteration (ms)' line to compare with");
  return r;
}

std::string format_comparison(const MeasuredRun& run, const StepPrediction& p, int M) {
  std::string s = comparison_header();
  auto row = [&](const char* name, double measured, double predicted) { s += comparison_row(name, measured, predicted, 2); };
  row("elapsed time per iteration (ms)", run.steady_elapsed_ms(), p.step_seconds * 1e3);
  if (auto f = run.timer("forward-compute")) row("forward-compute (ms)", *f, M * p.forward_seconds * 1e3);
  if (auto b = run.timer("backward-compute")) row("backward-compute (ms)", *b, M * p.backward_seconds * 1e3);
  if (auto o = run.timer("optimizer")) row("optimizer (ms)", *o, p.optimizer_seconds * 1e3);
  if (run.model_states_mb) row("model states (MB)", *run.model_states_mb, p.model_state_bytes / 1048576.0);
  if (run.activations_mb) row("activations (MB)", *run.activations_mb, p.activation_bytes / 1048576.0);
  return s;
}

}  // namespace loom
