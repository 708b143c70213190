// EVA-CLIP's training lines (see log_parsers.h). A line reads
//   ... | INFO | Global Steps: 101 Train Epoch: 0 [ 206848/12202117 (2%)] Loss: 29.299 (29.32) Loss(CLIP): ...
//   Grad Norm: 4.7007 (4.809) Loss Scaler: 65536. (6.554e+04) LR: 0.000000 LR_visual: 0.000010 ...
//   Logit Scale: 14.299 Data (t): 0.001 Batch (t): 1.856, 1057.47/s
// with "label: value (running mean)" pairs; the current value is the one kept.
#include <cctype>
#include <cstdlib>

#include "loom/report/log_parsers.h"

namespace loom::report {

namespace {

std::string column_of(const std::string& label, bool* seconds) {
  *seconds = false;
  if (label == "Grad Norm") return "grad_norm";
  if (label == "Loss Scaler") return "loss_scale";
  if (label == "LR") return "lr";
  if (label.rfind("LR_", 0) == 0) return "lr[" + label.substr(3) + "]";
  if (label.rfind("Loss", 0) == 0) return "loss[" + label + "]";
  if (label == "Logit Scale") return "logit_scale";
  *seconds = true;
  if (label == "Batch (t)") return "step_time_ms";
  if (label == "Data (t)") return "data_time_ms";
  *seconds = false;
  std::string c;
  for (char ch : label) c += ch == ' ' ? '_' : char(std::tolower(static_cast<unsigned char>(ch)));
  return c;
}

}  // namespace

bool EvaClipParser::line(const std::string& text) {
  if (text.find("OVERFLOW! Rank 0 Skipping step") != std::string::npos) {
    overflows_++;
    matched_++;
    return true;
  }
  const auto g = text.find("| Global Steps: ");
  if (g == std::string::npos) return false;
  char* end = nullptr;
  const int64_t step = std::strtoll(text.c_str() + g + 16, &end, 10);
  if (end == text.c_str() + g + 16) return false;
  // The pairs start after the epoch's "[ samples/total (pct%)]".
  size_t pos = text.find(']', g);
  if (pos == std::string::npos) return false;
  pos++;
  for (;;) {
    const auto colon = text.find(": ", pos);
    if (colon == std::string::npos) break;
    const std::string label = trim(text.substr(pos, colon - pos));
    size_t v = colon + 2;
    while (v < text.size() && text[v] == ' ') v++;
    size_t e = text.find_first_of(" ,", v);
    if (e == std::string::npos) e = text.size();
    const std::string value = text.substr(v, e - v);
    bool seconds;
    const std::string column = column_of(label, &seconds);
    table_.set(step, column, seconds ? shift_decimal(value, 3) : value);
    pos = e;
    while (pos < text.size() && text[pos] == ' ') pos++;
    if (pos < text.size() && text[pos] == '(') {  // the running mean
      const auto close = text.find(')', pos);
      pos = close == std::string::npos ? text.size() : close + 1;
    }
    if (pos < text.size() && text[pos] == ',') {  // ", 1057.47/s": samples per second
      const auto b = text.find_first_not_of(' ', pos + 1);
      const auto slash = b == std::string::npos ? b : text.find("/s", b);
      if (slash != std::string::npos) table_.set(step, "samples_per_s", text.substr(b, slash - b));
      break;
    }
  }
  table_.set(step, "skipped_iters", std::to_string(overflows_));
  overflows_ = 0;
  matched_++;
  return true;
}

}  // namespace loom::report
