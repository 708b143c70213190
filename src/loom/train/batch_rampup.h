#pragma once
// Megatron's number-of-micro-batches calculator (megatron/core/num_microbatches_calculator.py before the
// step schedules replaced it: ConstantNumMicroBatchesCalculator and RampupBatchsizeNumMicroBatchesCalculator)
// with update_train_iters (training.py). Given the samples consumed so far it gives the iteration's global
// batch size, the batch actually run (rounded down to a multiple of micro x data-parallel under
// --decrease-batch-size-if-needed) and the micro-batches per data-parallel rank, with Megatron's arithmetic:
//   --rampup-batch-size START INCREMENT SAMPLES: increments = (global - START) / INCREMENT;
//   per_increment = SAMPLES / increments (a float); at `consumed` samples the global batch is
//   global if consumed > SAMPLES, else START + int(consumed / per_increment) x INCREMENT.
// Pure arithmetic (no allocation in at()), so the trainer asks it every iteration.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loom {

struct BatchSizes {
  int64_t global = 0;   // Megatron's get_current_global_batch_size
  int64_t running = 0;  // get_current_running_global_batch_size: what the iteration runs and consumes
  int micro_batches = 0;  // per data-parallel rank (get_num_microbatches)
};

class BatchRampup {
 public:
  struct Options {
    int64_t global_batch = 1, micro_batch = 1, data_parallel = 1;
    bool decrease_if_needed = false;
    std::optional<std::array<int64_t, 3>> rampup;  // start, increment, ramp-up samples
  };
  // UserError for what Megatron's calculators reject (non-positive sizes, an interval the increment does not
  // divide, a ramp that ends below its start or has nothing to ramp, a constant batch that does not divide).
  explicit BatchRampup(Options o);

  bool ramps() const { return o_.rampup.has_value(); }
  const Options& options() const { return o_; }
  // update_num_microbatches(consumed, consistency_check=False).
  BatchSizes at(int64_t consumed) const;
  // consistency_check=True: "" when the batch at `consumed` can run, else why not (one line).
  std::string inconsistency(int64_t consumed) const;
  // update_train_iters for sample-based training: the ramp-up phase iteration by iteration, then whole
  // global batches (the partial last one dropped).
  int64_t train_iters(int64_t train_samples) const;
  // The path a run from 0 consumed samples takes over `iters` iterations (consumed advancing by the running
  // batch): the first iteration whose batch cannot run fails (UserError), as Megatron's assertion would, and
  // so does one whose micro-batch count is not a multiple of `micro_multiple` (the interleaved schedule).
  void check_run(int64_t iters, int micro_multiple, const std::string& multiple_why) const;
  // Every micro-batch count the calculator can give (whatever the consumed samples), ascending.
  std::vector<int> micro_batch_counts() const;
  int max_micro_batches() const;
  // Megatron's set-up line ("will use batch size rampup ..." or "setting number of micro-batches to
  // constant N"), and under --decrease-batch-size-if-needed with a constant batch its "decreasing" line.
  std::vector<std::string> setup_lines() const;
  // Megatron's lines when the global batch changes from `before` (none: the first) to `now`: "setting
  // initial batch size to N" or "ramping up batch size from A to B", then its "decreasing batch size" line
  // when the batch run is rounded down. Empty when the global batch did not change.
  std::vector<std::string> change_lines(std::optional<BatchSizes> before, const BatchSizes& now) const;

 private:
  BatchSizes sizes_of(int64_t global) const;
  Options o_;
  int64_t per_step_ = 1;          // micro x data-parallel
  double per_increment_ = 0;      // ramp-up samples per increment (Megatron's float)
};

}  // namespace loom
