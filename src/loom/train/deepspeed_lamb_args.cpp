#include "loom/train/deepspeed_lamb_args.h"

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/optim/adamw.h"

namespace loom {

void DeepSpeedLambArgs::apply_deepspeed(const nlohmann::json& o, const std::string& where) {
  enabled = true;
  if (!o.contains("params")) return;
  const nlohmann::json& q = o["params"];
  auto boolean = [&](const char* key, bool& dst) {
    if (!q.contains(key)) return;
    require(q[key].is_boolean(), where + ".params." + key + " must be true or false");
    dst = q[key].get<bool>();
  };
  auto number = [&](const char* key, double& dst) {
    if (!q.contains(key)) return;
    require(q[key].is_number(), where + ".params." + key + " must be a number");
    dst = q[key].get<double>();
  };
  boolean("bias_correction", bias_correction);
  boolean("eps_inside_sqrt", eps_inside_sqrt);
  number("max_coeff", max_coeff);
  number("min_coeff", min_coeff);
  double max_grad_norm = 0;
  number("max_grad_norm", max_grad_norm);
  require(max_grad_norm == 0, where + ".params.max_grad_norm (FusedLamb's own clipping) is not supported: use gradient_clipping");
  require(min_coeff > 0 && min_coeff <= max_coeff,
          where + ".params: min_coeff must be positive and not above max_coeff");
}

void DeepSpeedLambArgs::to_options(AdamWOptions& o) const {
  o.lamb_deepspeed = enabled;
  o.lamb_bias_correction = bias_correction;
  o.lamb_eps_inside_sqrt = eps_inside_sqrt;
  o.lamb_max_coeff = max_coeff;
  o.lamb_min_coeff = min_coeff;
}

}  // namespace loom
