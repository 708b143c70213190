#pragma once
// The memory preflight: before `loom train` allocates anything, every rank predicts its peak memory,
// the predictions are summed per node and compared with the memory the node has available, and a run
// that cannot fit stops with one line giving both figures and what would fit -- instead of being killed
// by the kernel (signal 9) halfway through building the model.
//
// The prediction is not a formula beside the code but the code itself: the rank's model chunks and
// optimizers are built under AddressSpaceOnly (storage is mapped, never touched, so nothing becomes
// resident) and their sizes read with the same calls the memory lines use. On top of that come what the
// tensors do not show: the checkpoint save's staging copies (std::vector, while a save runs), the data
// index maps, and the process's resident memory before the model (MPI, tokenizer, the binary).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/models/decoder_counts.h"

namespace loom {

struct PipelineLayout;
struct RankPrinter;
struct TensorParallel;
struct TrainArgs;
namespace parallel {
class ProcessGrid;
}

struct RankMemoryPrediction {
  int64_t weights = 0, grads = 0, optimizer = 0, working = 0;  // the model-states line's fields
  int64_t activations = 0;                                       // the activations line's total
  int in_flight = 0;                                             // micro-batches in flight
  int64_t construction_peak = 0;  // tensor bytes at the high-water mark of building model and optimizers
  int64_t save_staging = 0;       // std::vector copies a checkpoint save holds (0 without --save)
  int64_t index_maps = 0;         // doc/sample/shuffle index maps of the GPT dataset
  int64_t library_buffers = 0;    // kernels' own buffers (the bf16 GEMM fallback's fp32 operand copies)
  int64_t baseline_rss = 0;       // resident before the model: binary, MPI, tokenizer
  int64_t parameters = 0;         // parameters of the whole model this rank's chunks hold (all TP ranks)
  int64_t model_states() const { return weights + grads + optimizer + working; }
  // The most this rank holds at once: the larger of building (transients included) and training with a
  // save in flight, plus what lives outside the tensors.
  int64_t peak() const;
};

// This rank's prediction (collective-free: it builds only local objects). `cfg` is the run's model.
RankMemoryPrediction predict_rank_memory(const TrainArgs& a, const ModelConfig& cfg, const parallel::ProcessGrid& grid,
                                         const PipelineLayout& pl, const TensorParallel& tp);


// The activations line pipeline rank `pp_rank` of the layout `a` describes would print, in bytes, on any
// tensor-parallel rank: that rank's chunks built under AddressSpaceOnly, as the preflight builds them, by one
// process with no communicator (activations depend on TP, SP, PP, the schedule, recompute and the dtype,
// not on data parallelism or ZeRO). `loom plan` uses it to predict Loom's own runs.
int64_t predict_stage_activation_bytes(const TrainArgs& a, const ModelConfig& cfg, int pp_rank);

// (available_memory_bytes() in util/system_memory.h is what a node can give.)

// Collective over the world: sums the ranks' predicted peaks per node (ranks sharing a host name) and
// fails on every rank with one line when a node cannot hold its ranks, naming the figures and the
// cheapest changes that would fit (ZeRO stage, full recompute, more nodes). Returns this rank's prediction.
RankMemoryPrediction check_memory_fits(const TrainArgs& a, const ModelConfig& cfg, const parallel::ProcessGrid& grid,
                                       const PipelineLayout& pl, const TensorParallel& tp);

// "[Rank r] predicted memory (MB) | model states: ... | activations: ... | peak: ..." (the dry run's line).
std::string format_predicted_memory_line(int rank, const RankMemoryPrediction& m);

}  // namespace loom
