#pragma once
// What `loom train` prints while it runs, in Megatron's forms: print_rank_0 / print_rank_last, the set-up
// lines and argument block, each log interval's iteration line, the memory, model-states and activations
// lines (once), the --profile-layers table and the --pipeline-trace file.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "loom/models/decoder_counts.h"

namespace loom {

class AdamW;
class ArgParser;
class DecoderModel;
class Trainer;
struct StepResult;
struct TrainArgs;
namespace parallel {
class ProcessGrid;
}

// Megatron's print_rank_0 / print_rank_last: one line (newline added) from one rank, flushed.
struct RankPrinter {
  int rank = 0, world = 1;
  void print_rank_0(const std::string& line) const;
  void print_rank_last(const std::string& line) const;
};

// The lines before the data is built: the layout, the parameter dtype, the argument block, the number
// of micro-batches, the tokenizer with its padded vocabulary, the seed.
void print_setup_lines(const RankPrinter& out, const ArgParser& p, const TrainArgs& a,
                       const parallel::ProcessGrid& grid, const ModelConfig& cfg);

// One log interval's figures. As Megatron, a skipped iteration adds neither loss nor grad norm.
struct IntervalStats {
  using Clock = std::chrono::steady_clock;
  int iterations = 0;  // since the interval began
  int stepped = 0, skipped = 0, nan_iterations = 0;
  double loss_sum = 0;   // of the stepped iterations
  double grad_norm = 0;  // of the last stepped iteration
  double num_zeros = -1, params_norm = -1;  // of the last iteration that has them (-1: not logged)
  int64_t samples = 0;     // the interval's global batches (a ramp-up changes them)
  double flops = 0;        // the whole model's over those batches
  int64_t last_batch = 0;  // the last iteration's global batch (Megatron's "global batch size")
  Clock::time_point began = Clock::now();

  // The batch iteration `add` is about to count: `batch` samples costing `flops`.
  void add_batch(int64_t batch, double batch_flops) {
    samples += batch;
    flops += batch_flops;
    last_batch = batch;
  }

  // Counts the result of iteration `iteration`; a non-finite loss on an applied step is a UserError.
  void add(const StepResult& r, int64_t iteration);
  // After the interval's lines: the counts start again (the last grad norm stays) and so does the clock.
  void restart();
  void restart_clock() { began = Clock::now(); }
  // Wall time per iteration since the interval began, in ms.
  double elapsed_ms_per_iteration() const;
};

// The figures of the iteration line that ends an interval.
struct IterationFigures {
  int64_t iteration = 0, consumed_samples = 0;
  int64_t skipped_samples = 0;  // Megatron's "skipped samples" (shown when above 0)
  double learning_rate = 0, loss_scale = 1;
  double flops_per_iteration = 0;  // the whole model's, the interval's mean global batch
  double elapsed_ms = 0;           // per iteration (IntervalStats::elapsed_ms_per_iteration)
  int world = 1;                   // throughput is per process, as Megatron's "per GPU"
};
std::string interval_iteration_line(const IntervalStats& s, const TrainArgs& a, const IterationFigures& f);

// Resident set size now and at its peak, in MB: the CPU counterpart of CUDA's reserved memory.
std::pair<double, double> resident_mb();

// After the first logged interval: the memory line (first data-parallel replica only), then on every
// rank what its model states and activations occupy.
void print_memory_lines(int rank, int64_t iteration, bool first_replica, const std::vector<DecoderModel*>& chunks,
                        const std::vector<AdamW*>& opts);

// --profile-layers: the forward time of every layer of this rank's chunks each log interval, as the
// reference pipeline splitter prints it (per stage, per layer, forward only), summed over the run. As there,
// `ops` counts module calls: block_modules per block and micro-batch (the family's leaf modules, e.g. 8 for
// a Llama layer), one for the embedding and the output layer.
class LayerProfile {
 public:
  LayerProfile(bool enabled, int rank, const parallel::ProcessGrid& grid, int block_modules)
      : enabled_(enabled), rank_(rank), grid_(grid), block_modules_(block_modules) {}
  // The table of interval ending at `step` (printed by the first data- and tensor-parallel rank of each stage).
  void report(int64_t step, const std::vector<DecoderModel*>& chunks);
  // --profile-layers-output (nothing when `path` is empty): the average forward ms per call of every
  // layer, all stages merged by stage 0 into one JSON file (collective over the pipeline group).
  void write_costs(const std::string& path) const;

 private:
  bool enabled_;
  int rank_;
  const parallel::ProcessGrid& grid_;
  int block_modules_;
  std::map<std::string, std::pair<double, int>> sum_;  // label -> (ms, calls) over the whole run
};

// --pipeline-trace: the Chrome trace of the pipeline schedule (nothing without a pipeline or a path).
void write_pipeline_trace(Trainer& trainer, const parallel::ProcessGrid& grid, const std::string& path);

}  // namespace loom
