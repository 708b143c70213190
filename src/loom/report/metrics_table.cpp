#include "loom/report/metrics_table.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdlib>

namespace loom::report {

bool parse_number(const std::string& text, double* out) {
  if (text.empty()) return false;
  const char c = text[0];
  if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.' || c == 'n' || c == 'i'))
    return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return false;
  *out = v;
  return true;
}

std::string shift_decimal(const std::string& text, int places) {
  std::string sign, s = text;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    sign = s.substr(0, 1);
    s = s.substr(1);
  }
  std::string whole = s, frac;
  if (const auto dot = s.find('.'); dot != std::string::npos) {
    whole = s.substr(0, dot);
    frac = s.substr(dot + 1);
  }
  while (int(frac.size()) < places) frac += '0';
  whole += frac.substr(0, size_t(places));
  frac = frac.substr(size_t(places));
  while (whole.size() > 1 && whole[0] == '0') whole.erase(0, 1);
  if (whole.empty()) whole = "0";
  return sign + whole + (frac.empty() ? "" : "." + frac);
}

void RunTable::note_column(const std::string& column) {
  if (std::find(columns_.begin(), columns_.end(), column) == columns_.end()) columns_.push_back(column);
}

bool RunTable::set(int64_t iteration, const std::string& column, const std::string& text) {
  double v;
  if (!parse_number(text, &v)) return false;
  row(iteration)[column] = Value{v, text};
  note_column(column);
  return true;
}

bool RunTable::set_if_absent(int64_t iteration, const std::string& column, const std::string& text) {
  auto it = rows_.find(iteration);
  if (it != rows_.end() && it->second.count(column)) return false;
  return set(iteration, column, text);
}

bool RunTable::set_max(int64_t iteration, const std::string& column, const std::string& text) {
  double v;
  if (!parse_number(text, &v)) return false;
  auto& r = row(iteration);
  auto it = r.find(column);
  if (it == r.end() || v > it->second.number) r[column] = Value{v, text};
  note_column(column);
  return true;
}

namespace {

const std::vector<std::string> kStandard = {
    "lr", "loss_scale", "grad_norm", "skipped_iters", "step_time_ms", "tokens_per_s", "samples_per_s",
    "tflops", "mem_allocated_mb", "mem_max_allocated_mb", "mem_reserved_mb", "mem_max_reserved_mb"};

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// Where a column goes: losses, the standard metrics, other per-iteration metrics, validation, timers.
int group_of(const std::string& c) {
  if (starts_with(c, "loss[")) return 0;
  if (std::find(kStandard.begin(), kStandard.end(), c) != kStandard.end()) return 1;
  if (starts_with(c, "valid_") || starts_with(c, "test_")) return 3;
  if (starts_with(c, "time_ms[")) return 4;
  return 2;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::vector<std::string> table_columns(const std::vector<RunTable>& runs) {
  std::vector<std::string> seen;
  for (const auto& r : runs)
    for (const auto& c : r.columns())
      if (std::find(seen.begin(), seen.end(), c) == seen.end()) seen.push_back(c);
  std::vector<std::string> out;
  for (int g = 0; g <= 4; g++) {
    if (g == 1) {
      out.insert(out.end(), kStandard.begin(), kStandard.end());
      continue;
    }
    for (const auto& c : seen)
      if (group_of(c) == g) out.push_back(c);
  }
  return out;
}

std::string csv_text(const std::vector<RunTable>& runs, const std::vector<std::string>& columns) {
  std::string out = "run,iteration";
  for (const auto& c : columns) out += "," + csv_field(c);
  out += "\n";
  for (const auto& r : runs) {
    for (const auto& [iteration, values] : r.rows()) {
      out += csv_field(r.name) + "," + std::to_string(iteration);
      for (const auto& c : columns) {
        out += ",";
        if (auto it = values.find(c); it != values.end()) out += csv_field(it->second.text);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace loom::report
