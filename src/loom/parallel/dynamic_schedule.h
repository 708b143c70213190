#pragma once
// The dynamic pipeline schedule's choice of what to run next on one stage: MegatronDPP's greedy rule
// (forward_backward_pipelining_with_interleaving_dpp_* in its schedules.py, reference log 004) with two
// additions of ours.
//  - DPP: a priority list of (micro-batch, chunk) in chunk-major order: forwards from chunk 0 up,
//    backwards from the last chunk down, micro-batches in order within a chunk. Each step runs the first
//    backward whose gradient has arrived, then the first forward whose input has arrived.
//  - A cap on the micro-batches in flight on the stage (chunk 0's forward starts one, chunk 0's backward
//    ends it): DPP's first stage may otherwise run every chunk-0 forward before any backward. And a cap
//    on each chunk's live activations (its slots).
//  - Within a chunk, micro-batches run in order, forwards and backwards. Each parameter lives in one
//    chunk, so its gradient sums the micro-batches in the order 1F1B sums them, whatever arrives first:
//    results are bitwise those of 1F1B. (DPP's accumulation order follows arrival order.)
// Deadlock-free for any caps >= 1: the lowest unfinished micro-batch always has a runnable next step on
// some stage, because everything ahead of it in any chunk's order is finished.
// Pure logic (no communication), so it is tested on simulated pipelines.
#include <optional>
#include <vector>

#include "loom/parallel/pipeline_schedule.h"

namespace loom {

class DynamicSchedule {
 public:
  // slots[c]: live activations chunk c may hold; max_in_flight: micro-batches in flight on the stage.
  DynamicSchedule(int num_micro, std::vector<int> slots, int max_in_flight);

  void reset();  // a new iteration
  // A new iteration of `num_micro` micro-batches with that cap (a batch-size ramp-up changes both).
  void reset(int num_micro, int max_in_flight) {
    num_micro_ = num_micro;
    cap_ = max_in_flight;
    reset();
  }
  bool finished() const;

  // The first forward (or backward) in priority order that the caps allow and `ready(op)` accepts
  // (its input or gradient has arrived), if any. Forwards only when `forward`.
  template <class Ready>
  std::optional<PipeOp> next(bool forward, Ready&& ready) const {
    const int V = int(slots_.size());
    for (int i = 0; i < V; i++) {
      const int c = forward ? i : V - 1 - i;
      const PipeOp op = candidate(forward, c);
      if (op.micro >= 0 && ready(op)) return op;
    }
    return std::nullopt;
  }
  // The op chunk c would run next if its input were there (micro -1: none is allowed now).
  PipeOp candidate(bool forward, int chunk) const;
  void complete(const PipeOp& op);  // op (a candidate) has run

  int in_flight() const { return in_flight_; }
  int peak_in_flight() const { return peak_in_flight_; }
  int live(int chunk) const { return next_f_[size_t(chunk)] - next_b_[size_t(chunk)]; }
  int max_in_flight() const { return cap_; }

 private:
  int num_micro_, cap_;
  std::vector<int> slots_, next_f_, next_b_;  // [chunk]: next micro-batch to run forward / backward
  int in_flight_ = 0, peak_in_flight_ = 0;
};

}  // namespace loom
