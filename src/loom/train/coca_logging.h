#pragma once
// The CoCa run's log as EVA-CLIP's training/logger.py sets it up: every line `YYYY-MM-DD,HH:MM:SS | INFO |
// message` on the console and, for rank 0, in LOGS/NAME/out.log as well (EVA-CLIP's log_path); plus the
// start-up blocks of its main.py (the parameter counts, the sorted `Params:` dump).
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "loom/models/coca/coca_config.h"

namespace loom {

class EvaLogger {
 public:
  // log_file: "" for none. Only rank 0 writes the file and the rank-0 lines.
  EvaLogger(int rank, const std::string& log_file);
  ~EvaLogger();
  EvaLogger(const EvaLogger&) = delete;
  EvaLogger& operator=(const EvaLogger&) = delete;
  void info(const std::string& message) const;      // rank 0
  void info_all(const std::string& message) const;  // every rank (console only, as EVA-CLIP's per-rank lines)
  void raw(const std::string& line) const;          // rank 0, without the prefix (DeepSpeed's own lines)
  int rank() const { return rank_; }

 private:
  void write(const std::string& line) const;
  int rank_;
  FILE* file_ = nullptr;
};

// "number of total params: N", "number of params with requires_grad: N", "number of visual params: N",
// "number of text params: N" (log 000's lines, in its order).
std::vector<std::string> coca_count_lines(const CocaConfig& cfg);

// "Params:" then "  name: value" for every argument, sorted by name (EVA-CLIP prints vars(args) sorted).
std::vector<std::string> eva_params_lines(const std::vector<std::pair<std::string, std::string>>& args);

}  // namespace loom
