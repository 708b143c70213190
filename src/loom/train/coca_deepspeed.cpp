// CocaArgs::apply_deepspeed_config: the DeepSpeed JSON EVA-CLIP hands its engine (create_deepspeed_config,
// log 000's section 1.5), read onto the CoCa run's flags. Explicit flags win; what DeepSpeed would assert
// (batch sizes that do not multiply out) is one error line.
#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/train/coca_args.h"
#include "loom/train/deepspeed_numbers.h"

namespace loom {

void CocaArgs::apply_deepspeed_config(const ArgParser& p, int world_size) {
  if (deepspeed_config.empty()) return;
  std::ifstream f(deepspeed_config);
  if (!f) fail("cannot open --deepspeed-config " + deepspeed_config);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail(deepspeed_config + ": malformed JSON: " + e.what());
  }
  check_deepspeed_numbers(j, deepspeed_config);
  const auto where = [&](const std::string& key) { return deepspeed_config + ": " + key; };
  static const std::vector<std::string> known = {
      "train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_accumulation_dtype",
      "steps_per_print", "zero_allow_untested_optimizer", "fp16", "bf16", "amp", "flops_profiler",
      "activation_checkpointing", "optimizer", "gradient_clipping", "zero_optimization", "wall_clock_breakdown",
      "scheduler", "tensorboard"};
  for (const auto& [key, value] : j.items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      config_warnings.push_back(where("unknown key '" + key + "' (Loom does not know it; it has no effect)"));
  try {
    enable_deepspeed = true;
    if (j.contains("train_micro_batch_size_per_gpu") && !p.was_set("--batch-size"))
      batch_size = j["train_micro_batch_size_per_gpu"].get<int>();
    const int64_t accumulation = j.value("gradient_accumulation_steps", int64_t(1));
    if (accumulation != 1) fail(where("gradient_accumulation_steps") + " " + std::to_string(accumulation) +
                                ": EVA-CLIP's CoCa runs one micro-batch per step (accum_freq 1) here");
    if (j.contains("train_batch_size")) {
      const int64_t tbs = int64_t(j["train_batch_size"].get<double>());
      if (tbs != int64_t(batch_size) * world_size)
        fail(where("train_batch_size") + " " + std::to_string(tbs) + " is not train_micro_batch_size_per_gpu " +
             std::to_string(batch_size) + " x " + std::to_string(world_size) + " ranks");
    }
    if (j.contains("steps_per_print") && !j["steps_per_print"].is_number_integer())
      fail(where("steps_per_print") + " must be an integer (steps between DeepSpeed's progress lines)");
    steps_per_print = j.value("steps_per_print", int64_t(10));
    if (j.contains("gradient_clipping") && !p.was_set("--grad-clip-norm"))
      grad_clip_norm = j["gradient_clipping"].get<double>();
    if (j.contains("zero_optimization") && !p.was_set("--zero-stage"))
      zero_stage = j["zero_optimization"].value("stage", 0);
    const nlohmann::json fp16 = j.value("fp16", nlohmann::json::object());
    if (fp16.value("enabled", false) && !p.was_set("--precision")) precision = "fp16";
    if (j.value("bf16", nlohmann::json::object()).value("enabled", false) && !p.was_set("--precision"))
      precision = "bf16";
    initial_scale_power = fp16.value("initial_scale_power", initial_scale_power);
    loss_scale_window = fp16.value("loss_scale_window", loss_scale_window);
    hysteresis = fp16.value("hysteresis", hysteresis);
    min_loss_scale = fp16.value("min_loss_scale", min_loss_scale);
    static_loss_scale = fp16.value("loss_scale", static_loss_scale);
    // DeepSpeed turns the wall-clock breakdown on with the flops profiler (log 000's three lines a step).
    wall_clock_breakdown = j.value("wall_clock_breakdown", false) ||
                           j.value("flops_profiler", nlohmann::json::object()).value("enabled", false);
    if (j.contains("optimizer")) {
      const std::string type = j["optimizer"].value("type", "");
      std::string t = type;
      std::transform(t.begin(), t.end(), t.begin(), ::tolower);
      if (t != "lamb" && t != "adam" && t != "adamw")
        fail(where("optimizer.type") + " '" + type + "': Loom's CoCa run has Lamb, Adam and AdamW");
      if (!p.was_set("--optimizer")) optimizer = t == "lamb" ? "lamb" : "adamw";
      const nlohmann::json params = j["optimizer"].value("params", nlohmann::json::object());
      if (params.contains("betas")) {
        if (!p.was_set("--beta1")) beta1 = params["betas"].at(0).get<double>();
        if (!p.was_set("--beta2")) beta2 = params["betas"].at(1).get<double>();
      }
      if (params.contains("eps") && !p.was_set("--eps")) eps = params["eps"].get<double>();
      if (t == "lamb") lamb.apply_deepspeed(j["optimizer"], where("optimizer"));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(deepspeed_config + ": " + e.what());
  }
}

}  // namespace loom
