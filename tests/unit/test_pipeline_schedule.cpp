// Pipeline schedules against listings worked out by hand from Megatron's schedules.py
// (forward_backward_pipelining_without_interleaving / _with_interleaving).
#include <gtest/gtest.h>

#include "loom/parallel/pipeline_schedule.h"

using namespace loom;

TEST(PipelineSchedule, OneFOneBWarmupSteadyCooldown) {
  // P=4, M=6: rank r warms up with P - r - 1 forwards.
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::OneFOneB, 4, 0, 6, 1)),
            "F0.0 F1.0 F2.0 F3.0 B0.0 F4.0 B1.0 F5.0 B2.0 B3.0 B4.0 B5.0");
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::OneFOneB, 4, 3, 6, 1)),
            "F0.0 B0.0 F1.0 B1.0 F2.0 B2.0 F3.0 B3.0 F4.0 B4.0 F5.0 B5.0");
  // Fewer micro-batches than the warm-up: all forwards, then all backwards.
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::OneFOneB, 4, 0, 2, 1)), "F0.0 F1.0 B0.0 B1.0");
}

TEST(PipelineSchedule, GPipe) {
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::GPipe, 2, 1, 3, 1)), "F0.0 F1.0 F2.0 B0.0 B1.0 B2.0");
}

TEST(PipelineSchedule, InterleavedMatchesMegatron) {
  // P=2, V=2, M=4. Rank 0: warm-up (2-0-1)*2 + (2-1)*2 = 4 virtual micro-batches.
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::Interleaved, 2, 0, 4, 2)),
            "F0.0 F1.0 F0.1 F1.1 F2.0 B0.1 F3.0 B1.1 F2.1 B0.0 F3.1 B1.0 B2.1 B3.1 B2.0 B3.0");
  // Rank 1: warm-up (2-1-1)*2 + 2 = 2.
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::Interleaved, 2, 1, 4, 2)),
            "F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 F2.0 B0.0 F3.0 B1.0 F2.1 B2.1 F3.1 B3.1 B2.0 B3.0");
  // M == P: all forwards first.
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::Interleaved, 2, 1, 2, 2)), "F0.0 F1.0 F0.1 F1.1 B0.1 B1.1 B0.0 B1.0");
}

TEST(PipelineSchedule, EveryPassOnceAndActivationsBounded) {
  for (auto kind : {PipelineSchedule::GPipe, PipelineSchedule::OneFOneB, PipelineSchedule::Interleaved}) {
    const int P = 4, M = 8, V = kind == PipelineSchedule::Interleaved ? 2 : 1;
    for (int rank = 0; rank < P; rank++) {
      auto ops = pipeline_ops(kind, P, rank, M, V);
      ASSERT_EQ(int(ops.size()), 2 * M * V);
      for (int c = 0; c < V; c++) {
        // A backward never precedes its forward.
        std::vector<int> state(M, 0);
        for (auto& op : ops)
          if (op.chunk == c) {
            ASSERT_EQ(state[op.micro], op.forward ? 0 : 1);
            state[op.micro]++;
          }
      }
      if (kind == PipelineSchedule::GPipe) {
        EXPECT_EQ(max_in_flight(ops, 0), M);
      }
      if (kind == PipelineSchedule::OneFOneB) {
        EXPECT_EQ(max_in_flight(ops, 0), P - rank);  // at most P on stage 0
      }
    }
  }
}
