#pragma once
// The table `loom report` builds: per run, one row per logged iteration, one column per metric. A value
// keeps the exact text the log printed (so the CSV repeats the log digit for digit) next to its number
// (for the charts).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom::report {

struct Value {
  double number = 0;  // NaN when the log printed "nan"/"inf"
  std::string text;   // as printed (or a decimal shift of it, e.g. seconds -> ms)
};

class RunTable {
 public:
  std::string name;    // shown in the CSV's run column and the charts' legends
  std::string path;    // the log file
  std::string format;  // megatron, loom, deepspeed, eva-clip, pipeline-splitter

  // Sets a metric of an iteration from its printed text; returns false (and sets nothing) when the text
  // is not a number.
  bool set(int64_t iteration, const std::string& column, const std::string& text);
  bool set_if_absent(int64_t iteration, const std::string& column, const std::string& text);
  // Keeps the largest value (memory lines of several ranks for one iteration).
  bool set_max(int64_t iteration, const std::string& column, const std::string& text);

  const std::map<int64_t, std::map<std::string, Value>>& rows() const { return rows_; }
  // Columns in the order they first appeared in the log.
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::map<std::string, Value>& row(int64_t iteration) { return rows_[iteration]; }
  void note_column(const std::string& column);
  std::map<int64_t, std::map<std::string, Value>> rows_;
  std::vector<std::string> columns_;
};

// Parses a complete decimal/scientific number ("4.687E-05", "65536.", "nan"); false otherwise.
bool parse_number(const std::string& text, double* out);
// Moves the decimal point of a printed number `places` to the right ("1.856", 3 -> "1856"), exactly,
// so a unit change keeps the log's digits.
std::string shift_decimal(const std::string& text, int places);

// The metric columns of all runs: the standard ones always (blank where a log lacks them), then the
// log-specific ones (losses first, timers last), each group in order of first appearance.
std::vector<std::string> table_columns(const std::vector<RunTable>& runs);
std::string csv_text(const std::vector<RunTable>& runs, const std::vector<std::string>& columns);

}  // namespace loom::report
