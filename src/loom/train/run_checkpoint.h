#pragma once
// Checkpoints of `loom train`: where the run starts (--load) and the --save of its current state.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/ckpt/checkpoint.h"
#include "loom/models/decoder_counts.h"

namespace loom {

class AdamW;
class DecoderModel;
class GradScaler;
class LrScheduler;
class Timers;
struct RankPrinter;
struct TrainArgs;
namespace parallel {
class ProcessGrid;
}

// How far the run has got.
struct RunProgress {
  int64_t iteration = 0;
  int64_t consumed_train_samples = 0, consumed_valid_samples = 0;
  int64_t skipped_train_samples = 0;  // Megatron's: what --decrease-batch-size-if-needed left out
};

// Where the run starts: without --load, the seeded initial weights; with a .safetensors file, pretrained
// weights (e.g. 'loom convert' output); with a checkpoint directory, its weights, optimizer and training
// state (as --no-load-optim and --finetune say). Prints Megatron's loading lines; returns the state to
// resume from (all zero unless a checkpoint was loaded).
TrainState initialize_or_load(const TrainArgs& a, const std::vector<DecoderModel*>& chunks,
                              const std::vector<AdamW*>& opts, const RankPrinter& out);

// --save: writes the run's state (at most once per iteration; nothing without --save).
class RunCheckpointer {
 public:
  RunCheckpointer(const TrainArgs& a, const ModelConfig& cfg, const parallel::ProcessGrid& grid);
  ~RunCheckpointer();
  // Collective over the world; timed as "save-checkpoint".
  void save(const RunProgress& progress, const std::vector<DecoderModel*>& chunks, const std::vector<AdamW*>& opts,
            const LrScheduler& scheduler, const GradScaler* scaler, Timers& timers, const RankPrinter& out);
  // Waits for an --async-save to be committed (collective).
  void finish();

 private:
  const TrainArgs& a_;
  ModelConfig cfg_;
  std::unique_ptr<CheckpointSaver> saver_;
  int64_t last_saved_ = -1;
};

}  // namespace loom
