#include "loom/train/coca_logging.h"

#include <algorithm>
#include <ctime>

#include "loom/core/error.h"
#include "loom/train/eva_clip_log.h"

namespace loom {

EvaLogger::EvaLogger(int rank, const std::string& log_file) : rank_(rank) {
  if (rank_ == 0 && !log_file.empty()) {
    file_ = std::fopen(log_file.c_str(), "a");
    if (!file_) fail("cannot open the run's log file " + log_file);
  }
}

EvaLogger::~EvaLogger() {
  if (file_) std::fclose(file_);
}

void EvaLogger::write(const std::string& line) const {
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  if (file_) {
    std::fputs(line.c_str(), file_);
    std::fflush(file_);
  }
}

void EvaLogger::info(const std::string& message) const {
  if (rank_ == 0) write(eva_log_prefix(std::time(nullptr)) + message + "\n");
}

void EvaLogger::raw(const std::string& line) const {
  if (rank_ == 0) write(line + "\n");
}

void EvaLogger::info_all(const std::string& message) const {
  const std::string line = eva_log_prefix(std::time(nullptr)) + message + "\n";
  if (rank_ == 0) write(line);
  else {
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
  }
}

std::vector<std::string> coca_count_lines(const CocaConfig& cfg) {
  const CocaParamCounts c = coca_parameter_counts(cfg);
  return {"number of total params: " + std::to_string(c.total),
          "number of params with requires_grad: " + std::to_string(c.total),
          "number of visual params: " + std::to_string(c.visual), "number of text params: " + std::to_string(c.text)};
}

std::vector<std::string> eva_params_lines(const std::vector<std::pair<std::string, std::string>>& args) {
  std::vector<std::pair<std::string, std::string>> sorted = args;
  std::sort(sorted.begin(), sorted.end());  // Python's sorted() of the names: byte order
  std::vector<std::string> out{"Params:"};
  for (const auto& [k, v] : sorted) out.push_back("  " + k + ": " + v);
  return out;
}

}  // namespace loom
