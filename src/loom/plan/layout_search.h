#pragma once
// `loom plan --search`: every layout of N devices (TP x PP x VPP x DP x micro-batch x recompute x ZeRO
// stage x sequence parallelism) that can run the model and global batch, predicted with time_model.h,
// those that do not fit in the device's memory dropped, the rest ranked by predicted throughput.
// Dimensions the user fixed (a layout flag given with --search) are not varied.
#include <optional>
#include <vector>

#include "loom/plan/time_model.h"

namespace loom {

struct SearchSpace {
  int gpus = 0;
  std::optional<int> tp, pp, vpp, micro_batch, zero_stage;
  std::optional<bool> sequence_parallel;
  std::optional<RecomputeGranularity> recompute;
  // Unset: 1F1B and zero-bubble are tried with one virtual stage, interleaved with more.
  std::optional<PipelineSchedule> schedule;
  PlanLayout base;  // global batch, dtype, bytes, schedule preferences, overlap, offload
  // Memory a rank may use: the device's memory times this (the rest: CUDA context, allocator slack).
  double usable_fraction = 0.95;
};

struct RankedLayout {
  PlanLayout layout;
  StepPrediction prediction;
};

struct SearchResult {
  std::vector<RankedLayout> fitting;  // fastest first
  int64_t evaluated = 0;              // layouts that divide the model
  // The layout that needs the least memory, when none fits (for the error message).
  std::optional<RankedLayout> smallest;
};

// Throws UserError when no layout of `gpus` divides the model, or none fits (saying by how much).
SearchResult search_layouts(const ModelConfig& c, const SearchSpace& space, const Hardware& hw);

}  // namespace loom
