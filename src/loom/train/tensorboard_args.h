#pragma once
// TensorBoard's flags, with Megatron's names and defaults (--tensorboard-dir, --tensorboard-log-interval,
// --tensorboard-queue-size, --log-*-to-tensorboard), and the "tensorboard" section of a DeepSpeed JSON.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace loom {

class ArgParser;

struct TensorBoardArgs {
  std::string dir;  // --tensorboard-dir: Megatron's scalars; none without it
  int64_t log_interval = 1, queue_size = 1000;
  bool log_timers = false, log_batch_size = false, log_validation_ppl = false, log_memory = false;
  bool log_world_size = false;
  bool log_learning_rate = true, log_loss_scale = true;  // Megatron turns these off with --no-... flags
  // DeepSpeed's monitor: DeepSpeed's own tags in output_path/job_name.
  bool deepspeed_enabled = false;
  std::string deepspeed_output_path, deepspeed_job_name = "DeepSpeedJobName";

  void register_flags(ArgParser& p);
  // The DeepSpeed JSON's "tensorboard" object (`where` names it in messages); throws UserError on a
  // value of the wrong type, warns about keys DeepSpeed's TensorBoardConfig does not have.
  void apply_deepspeed(const nlohmann::json& section, const std::string& where);
  // The directory DeepSpeed's TensorBoardMonitor writes to: os.path.join(output_path, job_name).
  std::string deepspeed_dir() const;
  // Flag values that need no file access; throws UserError.
  void validate() const;
  // Every directory the run will write events to exists (created if missing) and takes a new file;
  // throws UserError naming the directory otherwise. Called before the run does any work.
  void check_dirs() const;
};

}  // namespace loom
