#include "loom/train/batch_rampup.h"

#include <algorithm>

#include "loom/core/error.h"

namespace loom {

namespace {
std::string str(int64_t v) { return std::to_string(v); }
}  // namespace

BatchRampup::BatchRampup(Options o) : o_(o) {
  require(o_.micro_batch > 0 && o_.data_parallel > 0, "--micro-batch-size and the data-parallel size must be positive");
  require(o_.global_batch > 0, "--global-batch-size must be positive, got " + str(o_.global_batch));
  per_step_ = o_.micro_batch * o_.data_parallel;
  const std::string divisor = "--micro-batch-size x data-parallel size (" + str(o_.micro_batch) + " x " +
                              str(o_.data_parallel) + ")";
  if (!o_.rampup) {  // ConstantNumMicroBatchesCalculator
    if (!o_.decrease_if_needed)
      require(o_.global_batch % per_step_ == 0, "--global-batch-size (" + str(o_.global_batch) +
                                                    ") must be a multiple of " + divisor +
                                                    " (or give --decrease-batch-size-if-needed)");
    require(o_.global_batch / per_step_ >= 1, "--decrease-batch-size-if-needed: --global-batch-size (" +
                                                  str(o_.global_batch) + ") rounds down to 0 micro-batches of " +
                                                  divisor);
    return;
  }
  const auto [start, increment, samples] = *o_.rampup;
  const std::string flag = "--rampup-batch-size " + str(start) + " " + str(increment) + " " + str(samples) + ": ";
  require(start > 0, flag + "the start batch size must be positive");
  require(increment > 0, flag + "the batch size increment must be positive");
  require(samples >= 0, flag + "the ramp-up samples must not be negative");
  const int64_t diff = o_.global_batch - start;
  require(diff >= 0, flag + "the start batch size is above --global-batch-size (" + str(o_.global_batch) + ")");
  require(diff % increment == 0, flag + "the interval from the start batch size to --global-batch-size (" +
                                     str(diff) + ") is not a multiple of the increment");
  // Megatron divides by these (ZeroDivisionError): nothing to ramp, or no samples to ramp over.
  require(diff > 0, flag + "the start batch size equals --global-batch-size: nothing to ramp up (drop the flag)");
  require(samples > 0, flag + "the ramp-up samples must be positive");
  per_increment_ = double(samples) / double(diff / increment);
}

BatchSizes BatchRampup::sizes_of(int64_t global) const {
  BatchSizes b;
  b.global = global;
  b.running = o_.decrease_if_needed && global % per_step_ != 0 ? global / per_step_ * per_step_ : global;
  b.micro_batches = int(b.running / per_step_);
  return b;
}

BatchSizes BatchRampup::at(int64_t consumed) const {
  if (!o_.rampup || consumed > (*o_.rampup)[2]) return sizes_of(o_.global_batch);
  const int64_t steps = int64_t(double(consumed) / per_increment_);  // Python's int(consumed / per_increment)
  return sizes_of((*o_.rampup)[0] + steps * (*o_.rampup)[1]);
}

std::string BatchRampup::inconsistency(int64_t consumed) const {
  const BatchSizes b = at(consumed);
  const bool divides = o_.decrease_if_needed || b.global % per_step_ == 0;
  if (divides && b.micro_batches >= 1) return {};  // no allocation on the way every iteration takes
  const std::string divisor = "--micro-batch-size x data-parallel size (" + str(o_.micro_batch) + " x " +
                              str(o_.data_parallel) + ")";
  if (!divides)
    return "the ramp-up's global batch size " + str(b.global) + " (after " + str(consumed) +
           " samples) is not a multiple of " + divisor + ": change the sizes or give --decrease-batch-size-if-needed";
  return "--decrease-batch-size-if-needed: the ramp-up's global batch size " + str(b.global) + " (after " +
         str(consumed) + " samples) rounds down to 0 micro-batches of " + divisor;
}

int64_t BatchRampup::train_iters(int64_t train_samples) const {
  if (!o_.rampup) return train_samples / o_.global_batch;
  int64_t iterations = 0, consumed = 0;
  while (consumed <= (*o_.rampup)[2] && consumed <= train_samples) {
    consumed += at(consumed).global;  // Megatron counts the unrounded batch here
    iterations++;
  }
  if (train_samples > consumed) iterations += (train_samples - consumed) / o_.global_batch;
  return iterations;
}

void BatchRampup::check_run(int64_t iters, int micro_multiple, const std::string& multiple_why) const {
  int64_t consumed = 0;
  for (int64_t it = 0; it < iters; it++) {
    if (const std::string why = inconsistency(consumed); !why.empty())
      fail(why + " (iteration " + str(it + 1) + ")");
    const BatchSizes b = at(consumed);
    if (micro_multiple > 1)
      require(b.micro_batches >= micro_multiple && b.micro_batches % micro_multiple == 0,
              multiple_why + ": the global batch size " + str(b.running) + " at iteration " + str(it + 1) + " gives " +
                  std::to_string(b.micro_batches) + " micro-batches, not a multiple of " +
                  std::to_string(micro_multiple));
    // Past the ramp the batch no longer changes: one check covers the rest.
    if (!o_.rampup || consumed > (*o_.rampup)[2]) break;
    consumed += b.running;
  }
}

std::vector<int> BatchRampup::micro_batch_counts() const {
  std::vector<int> counts = {sizes_of(o_.global_batch).micro_batches};
  if (o_.rampup)
    for (int64_t g = (*o_.rampup)[0]; g <= o_.global_batch; g += (*o_.rampup)[1]) {
      const BatchSizes b = sizes_of(g);
      if ((o_.decrease_if_needed || g % per_step_ == 0) && b.micro_batches >= 1) counts.push_back(b.micro_batches);
    }
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  return counts;
}

int BatchRampup::max_micro_batches() const { return micro_batch_counts().back(); }

std::vector<std::string> BatchRampup::setup_lines() const {
  if (o_.rampup) {
    std::vector<std::string> lines = {
        "will use batch size rampup starting from global batch size " + str((*o_.rampup)[0]) +
        " to global batch size " + str(o_.global_batch) + " with batch size increments " + str((*o_.rampup)[1]) +
        " over " + str((*o_.rampup)[2]) + " samples."};
    for (std::string& l : change_lines(std::nullopt, at(0))) lines.push_back(std::move(l));
    return lines;
  }
  std::vector<std::string> lines;
  const BatchSizes b = sizes_of(o_.global_batch);
  if (o_.decrease_if_needed)
    lines.push_back("decreasing batch size from " + str(b.global) + " to " + str(b.running) +
                    " to keep divisiblity by micro_batch_size=" + str(o_.micro_batch) +
                    " * data_parallel_size=" + str(o_.data_parallel));
  lines.push_back("setting number of micro-batches to constant " + std::to_string(b.micro_batches));
  return lines;
}

std::vector<std::string> BatchRampup::change_lines(std::optional<BatchSizes> before, const BatchSizes& now) const {
  std::vector<std::string> lines;
  if (before && before->global == now.global) return lines;
  lines.push_back(before ? "ramping up batch size from " + str(before->global) + " to " + str(now.global)
                         : "setting initial batch size to " + str(now.global));
  if (now.running != now.global)
    lines.push_back("decreasing batch size from " + str(now.global) + " to " + str(now.running) +
                    " to keep divisiblity by micro_batch_size=" + str(o_.micro_batch) +
                    " * data_parallel_size=" + str(o_.data_parallel));
  return lines;
}

}  // namespace loom
