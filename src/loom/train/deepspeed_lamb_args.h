#pragma once
// A DeepSpeed config's optimizer {"type": "Lamb", "params": {...}} builds DeepSpeed's FusedLamb, whose
// arithmetic differs from apex FusedLAMB (Loom's --optimizer lamb, Megatron's): bias corrections in the
// step size, eps optionally inside the square root, every tensor's trust ratio clamped to
// [min_coeff, max_coeff] (kernels/cpu/lamb.h). Its params bias_correction, max_coeff, min_coeff and
// eps_inside_sqrt are read here; max_grad_norm (FusedLamb's own clipping) must be 0: use
// gradient_clipping.
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace loom {

struct AdamWOptions;

struct DeepSpeedLambArgs {
  bool enabled = false;
  bool bias_correction = true, eps_inside_sqrt = false;
  double max_coeff = 10.0, min_coeff = 0.01;

  // The config's "optimizer" object (type already checked to be Lamb); `where` names it in messages.
  void apply_deepspeed(const nlohmann::json& optimizer, const std::string& where);
  void to_options(AdamWOptions& o) const;
};

}  // namespace loom
