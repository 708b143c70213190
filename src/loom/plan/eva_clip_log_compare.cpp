#include "loom/plan/eva_clip_log_compare.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "loom/core/error.h"

namespace loom {
namespace {

std::optional<double> number_after(const std::string& line, const std::string& key) {
  const size_t at = line.find(key);
  if (at == std::string::npos) return std::nullopt;
  const char* p = line.c_str() + at + key.size();
  char* end = nullptr;
  const double v = std::strtod(p, &end);
  if (end == p) return std::nullopt;
  return v;
}

}  // namespace

double MeasuredCocaRun::steady_batch_seconds() const {
  if (batch_seconds.size() <= 1) return batch_seconds.empty() ? 0.0 : batch_seconds[0];
  double sum = 0;
  for (size_t i = 1; i < batch_seconds.size(); i++) sum += batch_seconds[i];
  return sum / double(batch_seconds.size() - 1);
}

MeasuredCocaRun parse_eva_clip_log(const std::string& text) {
  MeasuredCocaRun r;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("| INFO | Global Steps: ") != std::string::npos)
      if (auto v = number_after(line, " Batch (t): ")) r.batch_seconds.push_back(*v);
    if (line.find("] [timer.py:") != std::string::npos) {
      // " MemAllocated=" with its space: "MaxMemAllocated=" also ends in it.
      if (auto v = number_after(line, " MemAllocated=")) r.mem_allocated_gb = *v;
      if (auto v = number_after(line, " MaxMemAllocated=")) r.max_mem_allocated_gb = *v;
    }
  }
  return r;
}

MeasuredCocaRun read_eva_clip_log(const std::string& path) {
  std::ifstream f(path);
  require(bool(f), "cannot open --compare-log " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  MeasuredCocaRun r = parse_eva_clip_log(ss.str());
  require(!r.batch_seconds.empty(), path + ": no EVA-CLIP 'Global Steps: ... Batch (t): T' line to compare with");
  return r;
}

std::string format_coca_comparison(const MeasuredCocaRun& run, double predicted_step_seconds,
                                   const CocaMemoryTerms& memory) {
  std::string s = " > prediction against the log         measured    predicted   predicted/measured\n";
  char buf[160];
  auto row = [&](const char* name, double measured, double predicted) {
    std::snprintf(buf, sizeof buf, "   %-32s %10.3f  %10.3f   %.3f\n", name, measured, predicted,
                  measured > 0 ? predicted / measured : 0.0);
    s += buf;
  };
  if (predicted_step_seconds > 0) row("Batch (t) (s)", run.steady_batch_seconds(), predicted_step_seconds);
  const double gib = 1024.0 * 1024.0 * 1024.0;
  if (run.mem_allocated_gb) row("MemAllocated (GB)", *run.mem_allocated_gb, memory.steady() / gib);
  if (run.max_mem_allocated_gb) row("MaxMemAllocated (GB)", *run.max_mem_allocated_gb, memory.peak() / gib);
  return s;
}

}  // namespace loom
