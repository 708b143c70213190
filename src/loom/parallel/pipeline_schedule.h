#pragma once
// The order in which one pipeline rank runs the forward (F) and backward (B) passes of its
// micro-batches, as Megatron's schedules do (megatron/core/pipeline_parallel/schedules.py):
//  - gpipe:       all forwards, then all backwards;
//  - 1f1b:        min(P - rank - 1, M) warm-up forwards, then one forward / one backward, then the
//                 remaining backwards (forward_backward_pipelining_without_interleaving);
//  - interleaved: V model chunks per rank, Megatron's forward_backward_pipelining_with_interleaving
//                 (warm-up (P - rank - 1) x 2 + (V - 1) x P passes, chunk order by get_model_chunk_id).
//  - zero-bubble: ZB-H1 of "Zero Bubble Pipeline Parallelism" (Qi et al. 2023; the authors'
//                 ZeroBubbleH1Pipeline): each backward split into B (input gradient, sent upstream at
//                 once) and W (weight gradients). Stage s runs P - s - 1 warm-up forwards, then s (F, B)
//                 pairs with their W deferred, then (F, B, W) triples, then (B, W) pairs, then the s
//                 deferred W; W runs in micro-batch order, so every weight gradient accumulates in
//                 1F1B's order. A micro-batch stays in flight until its W (every stage holds P).
//  - dynamic:     no fixed order: each stage runs what has arrived (loom/parallel/dynamic_schedule.h);
//                 its memory is bounded by the fixed schedule of the same shape (1f1b, or interleaved
//                 with V > 1), whose ops pipeline_ops returns for it.
// A pure function of (kind, P, rank, M, V), so it is tested against listings derived from Megatron.
#include <string>
#include <vector>

namespace loom {

enum class PipelineSchedule { GPipe, OneFOneB, Interleaved, Dynamic, ZeroBubble };

struct PipeOp {
  bool forward;
  int micro;  // micro-batch index within the iteration (this data-parallel rank's)
  int chunk;  // model chunk (virtual stage) on this rank
  // Zero-bubble only: a backward (forward false) is then B, the input gradient, and an op with weight
  // set is W, the micro-batch's weight gradients. Other schedules run the whole backward as one op.
  bool weight = false;
  bool operator==(const PipeOp&) const = default;
};

PipelineSchedule parse_pipeline_schedule(const std::string& name);  // gpipe | 1f1b | interleaved | dynamic | zero-bubble
std::vector<PipeOp> pipeline_ops(PipelineSchedule kind, int P, int rank, int M, int V);
// Forward passes only (evaluation): every micro-batch through every chunk in Megatron's order.
std::vector<PipeOp> pipeline_forward_ops(int P, int M, int V);
// The most micro-batches whose activations a chunk holds at once under `ops` (slots to allocate): from
// its forward to its backward, or to its W when `ops` has W passes.
int max_in_flight(const std::vector<PipeOp>& ops, int chunk);
// For chunk 0 that is also the most micro-batches in flight on the rank (started by chunk 0's forward,
// finished by its backward): the dynamic schedule's default cap.
// "F0.0 F1.0 B0.0 ... W0.0" (micro.chunk), for tests and logs.
std::string describe(const std::vector<PipeOp>& ops);

}  // namespace loom
