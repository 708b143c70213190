#include "loom/eval/eval_log.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

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

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Shortest round-trip digits (to_chars, like Python's dtoa mode 0), as d.ddddde[+-]X.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp10 = std::atoi(sci.c_str() + e + 1);
  const int decpt = exp10 + 1;  // value = 0.digits x 10^decpt
  const int nd = int(digits.size());
  // Python's float_repr_style 'short': exponent form when decpt <= -4 or decpt > 16.
  if (decpt <= -4 || decpt > 16) {
    std::string m = digits.substr(0, 1);
    if (nd > 1) m += "." + digits.substr(1);
    char ex[16];
    std::snprintf(ex, sizeof ex, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    return sign + m + ex;
  }
  if (decpt <= 0) return sign + "0." + std::string(size_t(-decpt), '0') + digits;
  if (decpt < nd) return sign + digits.substr(0, size_t(decpt)) + "." + digits.substr(size_t(decpt));
  return sign + digits + std::string(size_t(decpt - nd), '0') + ".0";
}

std::string results_json_line(const std::vector<EvalMetric>& metrics) {
  std::string s = "{";
  for (size_t i = 0; i < metrics.size(); i++) {
    if (i) s += ", ";
    s += '"';
    for (char c : metrics[i].name) {
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += "\": ";
    const double v = metrics[i].value;
    if (metrics[i].kind == MetricKind::PyInt) {
      char b[32];
      std::snprintf(b, sizeof b, "%.0f", v);
      s += b;
    } else if (std::isnan(v)) {
      s += "NaN";
    } else if (std::isinf(v)) {
      s += v > 0 ? "Infinity" : "-Infinity";
    } else {
      s += python_float_repr(v);
    }
  }
  return s + "}";
}

std::string eval_progress_line(int epoch, long num_samples, long samples_per_val, double loss) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", loss);
  return "Eval Epoch: " + std::to_string(epoch) + " [" + std::to_string(num_samples) + " / " +
         std::to_string(samples_per_val) + "]\tLoss: " + buf + "\t";
}

}  // namespace loom::eval
