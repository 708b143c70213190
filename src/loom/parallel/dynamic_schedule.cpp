#include "loom/parallel/dynamic_schedule.h"

#include <algorithm>

namespace loom {

DynamicSchedule::DynamicSchedule(int num_micro, std::vector<int> slots, int max_in_flight)
    : num_micro_(num_micro), cap_(max_in_flight), slots_(std::move(slots)) {
  next_f_.assign(slots_.size(), 0);
  next_b_.assign(slots_.size(), 0);
}

void DynamicSchedule::reset() {
  std::fill(next_f_.begin(), next_f_.end(), 0);
  std::fill(next_b_.begin(), next_b_.end(), 0);
  in_flight_ = 0;  // the peak is kept across iterations: it is what memory must hold
}

bool DynamicSchedule::finished() const {
  for (int b : next_b_)
    if (b < num_micro_) return false;
  return true;
}

PipeOp DynamicSchedule::candidate(bool forward, int c) const {
  const size_t i = size_t(c);
  if (forward) {
    const int m = next_f_[i];
    const bool allowed = m < num_micro_ && live(c) < slots_[i] && (c > 0 || in_flight_ < cap_);
    return {true, allowed ? m : -1, c};
  }
  const int m = next_b_[i];
  return {false, m < next_f_[i] ? m : -1, c};  // its forward has run
}

void DynamicSchedule::complete(const PipeOp& op) {
  const size_t i = size_t(op.chunk);
  if (op.forward) {
    next_f_[i]++;
    if (op.chunk == 0) peak_in_flight_ = std::max(peak_in_flight_, ++in_flight_);
  } else {
    next_b_[i]++;
    if (op.chunk == 0) in_flight_--;
  }
}

}  // namespace loom
