#include "loom/train/deepspeed_log.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "loom/train/arguments.h"
#include "loom/train/deepspeed_lines.h"
#include "loom/train/timers.h"
#include "loom/util/cli.h"

namespace loom {

namespace {

std::string py_number(double v) {  // an integral JSON value as Python prints an int, else its float repr
  if (std::floor(v) == v && std::fabs(v) < 9e15) return std::to_string(int64_t(v));
  return python_float(v);
}

// Python's json.dumps(value, sort_keys=True, indent=4, separators=(sep, ':' or ': ')).
std::string py_json(const nlohmann::json& j, int indent, bool space_after_colon) {
  const std::string pad(size_t(indent + 4), ' '), end_pad(size_t(indent), ' ');
  if (j.is_object() || j.is_array()) {
    if (j.empty()) return j.is_object() ? "{}" : "[]";
    std::string s = j.is_object() ? "{\n" : "[\n";
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      s += (first ? "" : ",\n") + pad;
      if (j.is_object()) s += nlohmann::json(it.key()).dump() + (space_after_colon ? ": " : ":");
      s += py_json(*it, indent + 4, space_after_colon);
      first = false;
    }
    return s + "\n" + end_pad + (j.is_object() ? "}" : "]");
  }
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  if (j.is_number_integer() || j.is_number_unsigned()) return j.dump();
  if (j.is_number_float()) return python_float(j.get<double>());
  if (j.is_null()) return "null";
  return j.dump(-1, ' ', true);  // strings, ASCII-escaped as Python's default
}

std::string py_bool(bool b) { return b ? "True" : "False"; }

}  // namespace

DeepSpeedLog::DeepSpeedLog(const TrainArgs& a, int world_size, int rank) : rank_(rank), world_(world_size) {
  if (a.deepspeed_config.empty()) return;
  std::ifstream f(a.deepspeed_config);
  j_ = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (j_.is_discarded() || !j_.is_object()) return;  // TrainArgs::validate has reported it already
  enabled_ = true;
  auto num = [&](const nlohmann::json& o, const char* key, double dflt) {
    return o.contains(key) && o[key].is_number() ? o[key].get<double>() : dflt;
  };
  steps_per_print_ = int64_t(num(j_, "steps_per_print", 10));
  wall_clock_ = j_.value("wall_clock_breakdown", false);
  accumulation_ = int64_t(num(j_, "gradient_accumulation_steps", 1));
  micro_batch_ = int64_t(num(j_, "train_micro_batch_size_per_gpu", double(a.micro_batch_size)));
  const nlohmann::json fp16 = j_.value("fp16", nlohmann::json::object());
  init_scale_ = std::ldexp(1.0, int(num(fp16, "initial_scale_power", 32)));
  window_ = int64_t(num(fp16, "loss_scale_window", 1000));
  hysteresis_ = int64_t(num(fp16, "hysteresis", 2));
  min_scale_ = num(fp16, "min_loss_scale", 1);
  beta1_ = a.adam_beta1;
  beta2_ = a.adam_beta2;
  log_interval_ = a.log_interval;
  last_ = std::chrono::steady_clock::now();
}

std::string DeepSpeedLog::prefix(const char* where) const { return deepspeed_prefix(where); }

void DeepSpeedLog::print_config() const {
  if (!enabled_ || rank_ != 0) return;
  const nlohmann::json fp16 = j_.value("fp16", nlohmann::json::object());
  const nlohmann::json zero = j_.value("zero_optimization", nlohmann::json::object());
  const nlohmann::json tb = j_.value("tensorboard", nlohmann::json::object());
  const nlohmann::json opt = j_.value("optimizer", nlohmann::json::object());
  const int stage = zero.value("stage", 0);
  // DeepSpeed 0.3's ZeRO defaults, overridden by the JSON's section.
  nlohmann::json zc = {{"allgather_bucket_size", 500000000}, {"allgather_partitions", true},
                       {"contiguous_gradients", false},      {"cpu_offload", false},
                       {"elastic_checkpoint", true},         {"load_from_fp32_weights", true},
                       {"overlap_comm", false},              {"reduce_bucket_size", 500000000},
                       {"reduce_scatter", true},             {"stage", stage}};
  for (auto it = zero.begin(); it != zero.end(); ++it)
    if (zc.contains(it.key())) zc[it.key()] = *it;
  const auto opt_name = opt.contains("type") ? "'" + opt["type"].get<std::string>() + "'" : std::string("None");
  std::string opt_params = "None";
  if (opt.contains("params")) opt_params = opt["params"].dump();
  const std::string scale = py_number(fp16.value("loss_scale", 0.0));
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"allreduce_always_fp32", "False"},
      {"amp_enabled", "False"},
      {"amp_params", "False"},
      {"disable_allgather", "False"},
      {"dump_state", "False"},
      {"dynamic_loss_scale_args", fp16.value("enabled", false)
                                      ? "{'init_scale': " + py_number(init_scale_) + ", 'scale_window': " +
                                            std::to_string(window_) + ", 'delayed_shift': " +
                                            std::to_string(hysteresis_) + ", 'min_scale': " + py_number(min_scale_) + "}"
                                      : "None"},
      {"fp16_enabled", py_bool(fp16.value("enabled", false))},
      {"global_rank", "0"},
      {"gradient_accumulation_steps", std::to_string(accumulation_)},
      {"gradient_clipping", python_float(j_.value("gradient_clipping", 0.0))},
      {"gradient_predivide_factor", "1.0"},
      {"initial_dynamic_scale", py_number(init_scale_)},
      {"loss_scale", scale},
      {"memory_breakdown", "False"},
      {"optimizer_legacy_fusion", "False"},
      {"optimizer_name", opt_name == "None" ? opt_name : opt_name.substr(1, opt_name.size() - 2)},
      {"optimizer_params", opt_params},
      {"pipeline", "{'stages': 'auto', 'partition': 'best', 'seed_layers': False, 'activation_checkpoint_interval': 0}"},
      {"pld_enabled", "False"},
      {"pld_params", "False"},
      {"prescale_gradients", "False"},
      {"scheduler_name", "None"},
      {"scheduler_params", "None"},
      {"sparse_attention", "None"},
      {"sparse_gradients_enabled", "False"},
      {"steps_per_print", std::to_string(steps_per_print_)},
      {"tensorboard_enabled", py_bool(tb.value("enabled", false))},
      {"tensorboard_job_name", tb.value("job_name", std::string("DeepSpeedJobName"))},
      {"tensorboard_output_path", tb.value("output_path", std::string(""))},
      {"train_batch_size", std::to_string(micro_batch_ * accumulation_ * world_)},
      {"train_micro_batch_size_per_gpu", std::to_string(micro_batch_)},
      {"wall_clock_breakdown", py_bool(wall_clock_)},
      {"world_size", std::to_string(world_)},
      {"zero_allow_untested_optimizer", "False"},
      {"zero_config", py_json(zc, 0, true)},
      {"zero_enabled", py_bool(stage > 0)},
      {"zero_optimization_stage", std::to_string(stage)},
  };
  std::string s = prefix("config.py:644:print") + "DeepSpeedEngine configuration:\n";
  for (const auto& [key, value] : rows) {
    // DeepSpeed: '  {} {} {}'.format(arg, '.' * (29 - len(arg)), value)
    const size_t dots = key.size() < 29 ? 29 - key.size() : 0;
    s += prefix("config.py:648:print") + "  " + key + " " + std::string(dots, '.') + " " + value + "\n";
  }
  s += prefix("config.py:655:print") + "  json = " + py_json(j_, 0, false) + "\n";
  std::fputs(s.c_str(), stdout);
  std::fflush(stdout);
}

void DeepSpeedLog::after_step(int64_t step, double lr, bool skipped, const Timers& timers) {
  if (!enabled_) return;
  skipped_total_ += skipped ? 1 : 0;
  const auto now = std::chrono::steady_clock::now();
  if (step > 2) {  // ThroughputTimer's start_step: the first steps warm up
    timed_s_ += std::chrono::duration<double>(now - last_).count();
    timed_steps_++;
  }
  last_ = now;
  // The timers accumulate since the last Megatron log line: per-step values are differences.
  if ((step - 1) % log_interval_ == 0) prev_grad_ms_ = prev_opt_ms_ = prev_copy_ms_ = 0;
  const double grad = timers.elapsed_ms("optimizer-unscale-and-check-inf") + timers.elapsed_ms("optimizer-clip-main-grad");
  const double opt = timers.elapsed_ms("optimizer"), copy = timers.elapsed_ms("optimizer-copy-main-to-model-params");
  const double d_grad = grad - prev_grad_ms_, d_copy = copy - prev_copy_ms_, d_opt = opt - prev_opt_ms_;
  prev_grad_ms_ = grad;
  prev_copy_ms_ = copy;
  prev_opt_ms_ = opt;
  if (rank_ != 0) return;
  if (wall_clock_) {
    // ZeRO's step timers: gradients (unscale, inf check, norm and clip), the optimizer step, and the
    // gathering of the updated weights (here the copy of the main weights into the model's storage).
    std::printf("rank=0 time (ms) | optimizer_gradients: %.2f | optimizer_step: %.2f | optimizer_allgather: %.2f\n",
                d_grad, std::max(0.0, d_opt - d_grad - d_copy), d_copy);
  }
  if (steps_per_print_ > 0 && step % steps_per_print_ == 0) {
    const std::string l = python_float(lr), m = "(" + python_float(beta1_) + ", " + python_float(beta2_) + ")";
    std::printf("%s[Rank 0] step=%lld, skipped=%lld, lr=[%s, %s], mom=[%s, %s]\n", prefix("logging.py:60:log_dist").c_str(),
                (long long)step, (long long)skipped_total_, l.c_str(), l.c_str(), m.c_str(), m.c_str());
    const double samples_per_step = double(micro_batch_ * world_);
    const double per_sec = timed_steps_ > 0 ? samples_per_step / (timed_s_ / double(timed_steps_)) : 0.0;
    std::printf("%s0/%lld, SamplesPerSec=%s\n", prefix("timer.py:166:stop").c_str(), (long long)step,
                python_float(per_sec).c_str());
  }
  std::fflush(stdout);
}

}  // namespace loom
