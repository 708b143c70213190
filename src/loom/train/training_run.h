#pragma once
// `loom train` after its flags are parsed: Megatron's pretrain() on this rank. setup() builds everything
// from the flags (layout, tokenizer, data, model chunks, optimizers, loss scaler, schedule, trainer) with
// Megatron's set-up lines; train() runs the iterations with their log lines, validation, checkpoints and
// exit conditions; finish() runs the final validation and test.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loom/models/decoder_counts.h"
#include "loom/parallel/tensor_parallel.h"
#include "loom/train/batch_rampup.h"
#include "loom/train/pipeline_runner.h"
#include "loom/train/run_checkpoint.h"
#include "loom/train/run_logging.h"
#include "loom/train/timers.h"
#include "loom/train/training_data.h"

namespace loom {

class AdamW;
class ArgParser;
class DeepSpeedLog;
class ExitConditions;
class DecoderModel;
class GradReducer;
class GradScaler;
class LrScheduler;
class RunTensorBoard;
class Trainer;
struct RankMemoryPrediction;
struct TrainArgs;
namespace data {
class Tokenizer;
}
namespace dist {
class Communicator;
}
namespace parallel {
class ProcessGrid;
}

class TrainingRun {
 public:
  using Clock = std::chrono::steady_clock;
  // `p` parsed `a`; `started`: when the command began (--exit-duration-in-mins counts from there).
  TrainingRun(TrainArgs& a, const ArgParser& p, Clock::time_point started);
  ~TrainingRun();

  // Everything before the first iteration. `argv` (the flags) must be the same on every rank. Every
  // problem with the flags or the data is a UserError raised before the model takes memory.
  void setup(int argc, char** argv);
  // --train-iters 0: setup printed the counts and predicted memory and built nothing else.
  bool dry_run() const { return dry_run_; }
  // The iterations up to --train-iters, then the profile, the pipeline trace and the last checkpoint.
  // False when an exit condition ended the run early (its checkpoint saved: nothing more to do).
  bool train();
  // The validation and test loss after training.
  void finish();

 private:
  void build_model();
  void print_dry_run(const RankMemoryPrediction& m);
  void build_trainer();
  void update_batch(int& micro_batches);
  void log_interval();
  void tensorboard_step(const StepResult& r);
  void validate(const std::string& prefix);
  void save();

  TrainArgs& a_;
  const ArgParser& p_;
  const Clock::time_point started_;
  std::shared_ptr<dist::Communicator> world_;
  RankPrinter out_;
  std::unique_ptr<parallel::ProcessGrid> grid_;
  TensorParallel tp_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  ModelConfig cfg_;
  int64_t gbs_ = 0;
  std::optional<BatchRampup> ramp_;  // the global batch and micro-batches of each iteration
  BatchSizes batch_;                 // the last iteration's (Megatron's calculator state)
  TrainingData data_;
  PipelineLayout pl_;
  std::vector<std::unique_ptr<DecoderModel>> models_;
  std::vector<std::unique_ptr<AdamW>> optimizers_;
  std::vector<DecoderModel*> chunks_;
  std::vector<AdamW*> opts_;
  std::unique_ptr<GradScaler> scaler_;
  std::unique_ptr<LrScheduler> scheduler_;
  Timers timers_;
  std::vector<std::unique_ptr<GradReducer>> reducers_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<LayerProfile> profile_;
  double flops_per_iteration_ = 0;
  RunProgress progress_;
  IntervalStats interval_;
  bool memory_reported_ = false;
  bool dry_run_ = false;
  std::unique_ptr<RunCheckpointer> checkpointer_;
  std::unique_ptr<ExitConditions> exit_;
  std::unique_ptr<RunTensorBoard> tensorboard_;
  std::unique_ptr<DeepSpeedLog> deepspeed_log_;  // DeepSpeed's own lines, with --deepspeed-config
};

// `loom train`: setup, train, finish. Returns the exit code.
int run_training(TrainArgs& a, const ArgParser& p, int argc, char** argv, TrainingRun::Clock::time_point started);

}  // namespace loom
