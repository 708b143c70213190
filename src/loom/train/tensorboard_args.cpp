#include "loom/train/tensorboard_args.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

void TensorBoardArgs::register_flags(ArgParser& p) {
  p.add_string("--tensorboard-dir", &dir,
               "write TensorBoard event files of Megatron's scalars (lm loss, learning-rate, loss-scale, grad-norm, "
               "validation loss, ...) to this directory, from the last rank");
  p.add_int("--tensorboard-log-interval", &log_interval, "iterations between TensorBoard scalars");
  p.add_int("--tensorboard-queue-size", &queue_size,
            "TensorBoard events that may wait for the writer thread before training waits for it");
  p.add_flag("--log-timers-to-tensorboard", &log_timers, "write the timers and iteration-time (seconds)");
  p.add_flag("--log-batch-size-to-tensorboard", &log_batch_size, "write batch-size");
  // Megatron's spelling of the flag ("learnig").
  p.add_no_flag("--no-log-learnig-rate-to-tensorboard", &log_learning_rate, "do not write learning-rate",
                "log_learning_rate_to_tensorboard");
  p.add_no_flag("--no-log-loss-scale-to-tensorboard", &log_loss_scale, "do not write loss-scale",
                "log_loss_scale_to_tensorboard");
  p.add_flag("--log-validation-ppl-to-tensorboard", &log_validation_ppl, "write the validation perplexity");
  p.add_flag("--log-memory-to-tensorboard", &log_memory,
             "write mem-allocated-bytes, mem-max-allocated-bytes (tensor memory) and mem-reserved-bytes (resident set)");
  p.add_flag("--log-world-size-to-tensorboard", &log_world_size, "write world-size");
}

void TensorBoardArgs::apply_deepspeed(const nlohmann::json& s, const std::string& where) {
  require(s.is_object(), where + " must be an object");
  for (const auto& [key, value] : s.items()) {
    if (key == "enabled") {
      require(value.is_boolean(), where + ".enabled must be true or false");
      deepspeed_enabled = value.get<bool>();
    } else if (key == "output_path" || key == "job_name") {
      require(value.is_string(), where + "." + key + " must be a string");
      (key == "output_path" ? deepspeed_output_path : deepspeed_job_name) = value.get<std::string>();
    } else {
      std::fprintf(stderr, "loom: warning: %s.%s is not a key of DeepSpeed's tensorboard section (enabled, "
                   "output_path, job_name): ignored\n", where.c_str(), key.c_str());
    }
  }
}

std::string TensorBoardArgs::deepspeed_dir() const {
  return (std::filesystem::path(deepspeed_output_path) / deepspeed_job_name).string();
}

void TensorBoardArgs::validate() const {
  require(log_interval > 0, "--tensorboard-log-interval must be positive");
  // The queue is allocated whole at start (about 170 bytes an event), so a mistyped size fails here.
  require(queue_size > 0 && queue_size <= 1000000, "--tensorboard-queue-size must be within 1..1000000");
}

namespace {

void check_dir(const std::string& d, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(d, ec) && !fs::is_directory(d, ec)) fail(what + " " + d + " is not a directory");
  fs::create_directories(d, ec);
  if (ec || !fs::is_directory(d)) fail("cannot create " + what + " " + d + (ec ? ": " + ec.message() : ""));
  // Permissions do not say it (root passes every access() check): create and remove a file.
  std::string probe = (fs::path(d) / ".loom-write-test-XXXXXX").string();
  const int fd = mkstemp(probe.data());
  if (fd < 0) fail("cannot write to " + what + " " + d + ": " + std::strerror(errno));
  close(fd);
  unlink(probe.c_str());
}

}  // namespace

void TensorBoardArgs::check_dirs() const {
  if (!dir.empty()) check_dir(dir, "--tensorboard-dir");
  if (deepspeed_enabled) check_dir(deepspeed_dir(), "the DeepSpeed tensorboard directory");
}

}  // namespace loom
