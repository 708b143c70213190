// The Loom side of test_batch_rampup.py: Megatron's micro-batch calculator (loom/train/batch_rampup.h).
// stdin: one case per line, "GLOBAL MICRO DP DECREASE START INCREMENT SAMPLES TRAIN_SAMPLES" (START -1: no
// ramp-up). stdout, one line per case: "iters N | G R M | G R M | ..." (each training iteration's global
// batch, batch run and micro-batches, as a run from 0 consumed samples takes them), or "error MESSAGE" for
// what the calculator or the run's checks refuse.
#include <iostream>
#include <sstream>
#include <string>

#include "loom/core/error.h"
#include "loom/train/batch_rampup.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    int64_t global, micro, dp, decrease, start, increment, samples, train_samples;
    if (!(in >> global >> micro >> dp >> decrease >> start >> increment >> samples >> train_samples)) return 1;
    loom::BatchRampup::Options o;
    o.global_batch = global;
    o.micro_batch = micro;
    o.data_parallel = dp;
    o.decrease_if_needed = decrease != 0;
    if (start >= 0) o.rampup = std::array<int64_t, 3>{start, increment, samples};
    try {
      const loom::BatchRampup ramp(o);
      const int64_t iters = ramp.train_iters(train_samples);
      ramp.check_run(iters, 1, "");
      std::string out = "iters " + std::to_string(iters);
      int64_t consumed = 0;
      for (int64_t it = 0; it < iters; it++) {
        const loom::BatchSizes b = ramp.at(consumed);
        out += " | " + std::to_string(b.global) + " " + std::to_string(b.running) + " " + std::to_string(b.micro_batches);
        consumed += b.running;
      }
      std::cout << out << "\n";
    } catch (const loom::UserError& e) {
      std::cout << "error " << e.what() << "\n";
    }
  }
  return 0;
}
