#pragma once
// Resumable distributed checkpoints, Megatron's directory layout:
//   DIR/latest_checkpointed_iteration.txt            the newest complete iteration
//   DIR/iter_0000100/metadata.json                   training state, layout, tensor map, file checksums
//   DIR/iter_0000100/shard_tp00_pp000.safetensors    one file per model-parallel rank (of data-parallel rank 0):
//       model/<name>, optim/exp_avg/<name>, optim/exp_avg_sq/<name> (this rank's slices; SGD:
//       optim/momentum_buffer/<name>, torch.optim.SGD's name, and "optimizer": "sgd" in metadata.json)
// metadata.json records, for every tensor, its full shape and which slice of it each file holds, so a
// checkpoint loads into any tensor-parallel layout (each rank reads the slices it needs). Saving writes
// into DIR/iter_0000100.tmp, checks every file's CRC-32, and only then renames the directory into place
// and updates latest_checkpointed_iteration.txt: a kill at any moment leaves the previous checkpoint
// intact and the partial one ignored.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "loom/ckpt/checkpoint_reader.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/loss_scaler.h"
#include "loom/optim/lr_scheduler.h"

namespace loom {

namespace parallel {
class ProcessGrid;
}

struct TrainState {
  int64_t iteration = 0;
  int64_t consumed_train_samples = 0;
  int64_t consumed_valid_samples = 0;
  int64_t skipped_train_samples = 0;  // --decrease-batch-size-if-needed: samples left out of rounded batches
  int64_t scheduler_steps = 0;  // samples the LR schedule has advanced
  int64_t optimizer_steps = 0;
  bool has_scaler = false;  // mixed precision: the loss scaler's state
  GradScalerState scaler;
  // The learning-rate schedule's values (Megatron's OptimizerParamScheduler state_dict: max/min lr,
  // warmup and decay steps, decay style); checkpoints older than this have none.
  bool has_lr_schedule = false;
  LrSchedule lr_schedule;
};

struct SaveOptions {
  bool save_optim = true;
  bool async = false;  // write from a background thread; the next save (or finish) waits for it
  std::map<std::string, std::string> info;  // recorded in metadata.json ("args": model and tokenizer)
};

class CheckpointSaver {
 public:
  CheckpointSaver(std::string dir, const parallel::ProcessGrid& grid);
  ~CheckpointSaver();
  // Collective over the world. Snapshots the state now; with async the files are written while
  // training goes on.
  // `chunks` are this rank's model chunks (one without virtual pipeline stages), `optimizers` theirs.
  void save(const TrainState& state, const std::vector<const DecoderModel*>& chunks,
            const std::vector<const AdamW*>& optimizers, const SaveOptions& opt);
  // Waits for a background save to be committed (collective).
  void finish();

 private:
  struct Pending;
  void write_and_commit(Pending& p);
  std::string dir_;
  const parallel::ProcessGrid& grid_;
  std::unique_ptr<Pending> pending_;
  std::thread writer_;
};

struct LoadOptions {
  bool load_optim = true;
  bool finetune = false;  // weights only; training state starts at zero
};

// Loads the newest checkpoint of `dir` (or the iteration directory `dir` itself) into this rank's model
// and optimizer, reading the slices its layout needs. Verifies checksums and shapes; every problem is a
// UserError naming the file.
TrainState load_checkpoint(const std::string& dir, const std::vector<DecoderModel*>& chunks,
                           const std::vector<AdamW*>& optimizers, const LoadOptions& opt);
inline TrainState load_checkpoint(const std::string& dir, DecoderModel& model, AdamW* optimizer, const LoadOptions& opt) {
  return load_checkpoint(dir, std::vector<DecoderModel*>{&model}, std::vector<AdamW*>{optimizer}, opt);
}

// iteration_dir(), checkpoint_iteration_dir() and checkpoint_info(): checkpoint_reader.h.

}  // namespace loom
