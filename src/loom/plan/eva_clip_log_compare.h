#pragma once
// `loom plan --model coca --compare-log LOG`: what an EVA-CLIP CoCa run's log measured (reference log 000,
// or Loom's own CoCa run, which prints the same lines), set beside the plan's prediction:
//   ... | INFO | Global Steps: N ... Batch (t): 1.856, 1057.47/s   the step time, averaged over the
//       logging window (EVA-CLIP resets its meters at every line)
//   [...] [timer.py:198:stop] ... MemAllocated=5.29GB, MaxMemAllocated=28.74GB   DeepSpeed's memory
#include <optional>
#include <string>
#include <vector>

#include "loom/plan/coca_memory_model.h"

namespace loom {

struct MeasuredCocaRun {
  std::vector<double> batch_seconds;  // each Global Steps line's Batch (t) average, in order
  std::optional<double> mem_allocated_gb, max_mem_allocated_gb;  // the last DeepSpeed throughput line's
  // The step time to compare: the mean of the lines after the first (its window holds the first steps'
  // start-up; the windows are of equal length but for an epoch's last), or the only one.
  double steady_batch_seconds() const;
};

MeasuredCocaRun parse_eva_clip_log(const std::string& text);
// Throws UserError when the file cannot be read or has no Global Steps line with Batch (t).
MeasuredCocaRun read_eva_clip_log(const std::string& path);

// One line per quantity: measured, predicted, predicted / measured.
std::string format_coca_comparison(const MeasuredCocaRun& run, double predicted_step_seconds,
                                   const CocaMemoryTerms& memory);

}  // namespace loom
