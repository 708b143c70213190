#pragma once
// Reads one training log (plain text or gzip) into a RunTable, recognising which system wrote it.
#include <string>

#include "loom/report/metrics_table.h"

namespace loom::report {

// Throws UserError "PATH: not a Megatron, DeepSpeed, EVA-CLIP, pipeline-splitter or Loom log" when no
// training line of any of them is found, or when the file cannot be read.
RunTable read_log(const std::string& path);

}  // namespace loom::report
