#pragma once
// `loom plan --compare-log LOG`: what a Loom (or Megatron) training log measured, read back from its
// lines (the iteration line's elapsed time, the timer line, Loom's model-states and activations lines),
// set beside the plan's prediction.
#include <optional>
#include <string>
#include <vector>

#include "loom/plan/time_model.h"

namespace loom {

struct MeasuredRun {
  std::vector<double> elapsed_ms;  // one per iteration line, in order
  // Timer averages (ms per iteration) from the last timer line, by name ("forward-compute", ...).
  std::vector<std::pair<std::string, double>> timers;
  std::optional<double> model_states_mb, activations_mb;  // the largest over ranks
  // The step time to compare: the median of the iterations after the first (the first pays for
  // allocation and warm-up), or the only one.
  double steady_elapsed_ms() const;
  std::optional<double> timer(const std::string& name) const;
};

// Helpers shared with the CoCa comparison (eva_clip_log_compare.h):
// the number after `key` in `line`, if the key occurs and a number follows;
std::optional<double> number_after(const std::string& line, const std::string& key);
// the whole file (UserError "cannot open --compare-log PATH");
std::string read_compare_log(const std::string& path);
// the table's header line and one row "   name  measured  predicted  predicted/measured" at `decimals`.
std::string comparison_header();
std::string comparison_row(const char* name, double measured, double predicted, int decimals);

// Throws UserError when the file cannot be read or has no iteration line.
MeasuredRun read_training_log(const std::string& path);
MeasuredRun parse_training_log(const std::string& text);

// The comparison table (one line per quantity: measured, predicted, predicted / measured).
std::string format_comparison(const MeasuredRun& run, const StepPrediction& p, int num_micro_batches);

}  // namespace loom
