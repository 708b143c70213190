#pragma once
// Line parsers for the training logs `loom report` reads. Each parser fills its own table and counts the
// lines it recognised; read_log.cpp decides from those counts which format a log is.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/report/metrics_table.h"

namespace loom::report {

class LogParser {
 public:
  virtual ~LogParser() = default;
  // Reads one line (without its newline); returns true when it was one of this parser's lines.
  virtual bool line(const std::string& text) = 0;
  RunTable& table() { return table_; }
  int64_t matched() const { return matched_; }

 protected:
  RunTable table_;
  int64_t matched_ = 0;
};

// Megatron-LM's iteration, timer, memory and validation lines: the 2021 form, Megatron-Core's (with a
// `[date time]` prefix), Megatron v1's as DeepSpeed's examples print them (`learning rate 1.5E-06`), and
// Loom's (Megatron's plus tokens/s and TFLOP/s; saw_loom_fields() tells).
class MegatronParser : public LogParser {
 public:
  bool line(const std::string& text) override;
  bool saw_loom_fields() const { return loom_fields_; }

 private:
  int64_t last_iteration_ = -1;
  bool loom_fields_ = false;
};

// DeepSpeed engine lines: `[Rank 0] step=N, skipped=S, lr=[...]` and `SamplesPerSec=`.
class DeepSpeedParser : public LogParser {
 public:
  bool line(const std::string& text) override;
};

// EVA-CLIP / open_clip training lines (`Global Steps: N ... Loss: ...`) and DeepSpeed's `OVERFLOW!`
// lines, counted as skipped iterations of the logging interval they fall in.
class EvaClipParser : public LogParser {
 public:
  bool line(const std::string& text) override;

 private:
  int64_t overflows_ = 0;
};

// The automatic pipeline splitter's (PyTorch-example style) `| epoch E | B/ N batches | lr ... |` lines.
class PipelineSplitterParser : public LogParser {
 public:
  bool line(const std::string& text) override;
};

// Splits "a | b | c" into trimmed, non-empty fields.
std::vector<std::string> split_fields(const std::string& text);
std::string trim(const std::string& s);

}  // namespace loom::report
