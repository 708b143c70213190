#pragma once
// The flags of `loom plan` beyond `loom train`'s: the processes (--world-size), the device (--hardware), the
// layout search (--search, --gpus, --top) and the comparison with a run's log (--compare-log).
#include <string>

#include "loom/plan/time_model.h"
#include "loom/train/arguments.h"
#include "loom/util/cli.h"

namespace loom {

struct PlanArgs {
  int world_size = 0;    // 0: tensor x pipeline x context parallel size
  std::string hardware;  // built-in name or FILE.json; empty: no time prediction
  bool search = false;
  int gpus = 0;
  int top = 10;
  std::string compare_log;
  bool unfused_attention = false;  // the run materialises the attention scores (no flash attention)

  void register_flags(ArgParser& p);
  // Checks before any work; throws UserError.
  void validate() const;
  // The device with the run's software choices applied (--unfused-attention).
  Hardware device() const;
};

// The layout `loom train` would run with these flags (world = tp x pp x dp).
PlanLayout layout_from_args(const TrainArgs& a);

}  // namespace loom
