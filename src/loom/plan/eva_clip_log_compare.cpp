#include "loom/plan/eva_clip_log_compare.h"

#include <sstream>

#include "loom/core/error.h"
#include "loom/plan/log_compare.h"

namespace loom {

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
  MeasuredCocaRun r = parse_eva_clip_log(read_compare_log(path));
  require(!r.batch_seconds.empty(), path + ": no EVA-CLIP 'Global Steps: ... Batch (t): T' line to compare with");
  return r;
}

std::string format_coca_comparison(const MeasuredCocaRun& run, double predicted_step_seconds,
                                   const CocaMemoryTerms& memory) {
  std::string s = comparison_header();
  auto row = [&](const char* name, double measured, double predicted) { s += comparison_row(name, measured, predicted, 3); };
  if (predicted_step_seconds > 0) row("Batch (t) (s)", run.steady_batch_seconds(), predicted_step_seconds);
  const double gib = 1024.0 * 1024.0 * 1024.0;
  if (run.mem_allocated_gb) row("MemAllocated (GB)", *run.mem_allocated_gb, memory.steady() / gib);
  if (run.max_mem_allocated_gb) row("MaxMemAllocated (GB)", *run.max_mem_allocated_gb, memory.peak() / gib);
  return s;
}

}  // namespace loom
