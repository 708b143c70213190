#pragma once
// One PipelineRunner::run()'s arguments and what it sums: shared by the fixed and the dynamic schedules
// (pipeline_runner.cpp, pipeline_runner_dynamic.cpp).
#include <cstdint>
#include <functional>

#include "loom/train/pipeline_runner.h"

namespace loom {

struct PipelineRunner::Iteration {
  bool training;
  const std::function<void(int, BatchBuffer&)>& load;
  const std::function<uint64_t(int)>& rng;
  float loss_grad_scale;
  double loss_total = 0;  // last stage: the micro-batch losses, summed in micro-batch order
  double busy_us = 0;     // compute (and injected delay) time
};

}  // namespace loom
