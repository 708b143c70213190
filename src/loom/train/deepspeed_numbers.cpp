#include "loom/train/deepspeed_numbers.h"

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "loom/core/error.h"

namespace loom {

void check_deepspeed_numbers(const nlohmann::json& config, const std::string& path) {
  struct Key {
    const char* section;  // nullptr: top level
    const char* name;
    double max;           // |value| must not exceed this (the integer type's range, or 2^62 for int64)
  };
  constexpr double kInt = 2147483647.0, kInt64 = 4611686018427387904.0;
  static const Key keys[] = {
      {nullptr, "train_micro_batch_size_per_gpu", kInt}, {nullptr, "train_batch_size", kInt64},
      {nullptr, "gradient_accumulation_steps", kInt64},  {"zero_optimization", "stage", kInt},
      {"zero_optimization", "reduce_bucket_size", kInt64}, {"fp16", "initial_scale_power", 1023},
      {"fp16", "loss_scale_window", kInt64},             {"fp16", "hysteresis", kInt64},
  };
  if (!config.is_object()) return;  // the mapping reports what is wrong with it
  for (const Key& k : keys) {
    const nlohmann::json* obj = &config;
    if (k.section) {
      auto s = config.find(k.section);
      if (s == config.end() || !s->is_object()) continue;
      obj = &*s;
    }
    auto v = obj->find(k.name);
    if (v == obj->end() || !v->is_number()) continue;  // absent, or a type error the mapping reports
    const std::string name = k.section ? std::string(k.section) + "." + k.name : std::string(k.name);
    bool ok;
    if (v->is_number_float()) {
      const double d = v->get<double>();
      ok = std::isfinite(d) && std::fabs(d) <= k.max;
    } else if (v->is_number_unsigned()) {
      ok = double(v->get<uint64_t>()) <= k.max;
    } else {
      ok = std::fabs(double(v->get<int64_t>())) <= k.max;
    }
    if (!ok) fail(path + ": " + name + " " + v->dump() + " is out of range");
  }
}

}  // namespace loom
