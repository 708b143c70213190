#include "loom/eval/eval_log.h"

#include <cmath>
#include <cstdio>

namespace loom::eval {

void set_metric(std::vector<EvalMetric>& metrics, const std::string& name, double value, MetricKind kind) {
  for (EvalMetric& m : metrics) {
    if (m.name == name) {
      m.value = value;
      m.kind = kind;
      return;
    }
  }
  metrics.push_back({name, value, kind});
}

std::string format_metric_value(double v, MetricKind kind) {
  // numpy's round for float64 (np.around): multiply by 10^decimals, round half to even, divide.
  if (kind == MetricKind::NumpyFloat64 && std::isfinite(v)) v = std::nearbyint(v * 10000.0) / 10000.0;
  char buf[64];
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

std::string eval_epoch_line(int epoch, const std::vector<EvalMetric>& metrics) {
  std::string s = "Eval Epoch: " + std::to_string(epoch) + " ";
  for (size_t i = 0; i < metrics.size(); i++) {
    if (i) s += '\t';
    s += metrics[i].name + ": " + format_metric_value(metrics[i].value, metrics[i].kind);
  }
  return s;
}

std::string eval_progress_line(int epoch, long num_samples, long samples_per_val, double loss) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", loss);
  return "Eval Epoch: " + std::to_string(epoch) + " [" + std::to_string(num_samples) + " / " +
         std::to_string(samples_per_val) + "]\tLoss: " + buf + "\t";
}

}  // namespace loom::eval
