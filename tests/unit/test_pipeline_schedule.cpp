// Pipeline schedules against listings worked out by hand from Megatron's schedules.py
// (forward_backward_pipelining_without_interleaving / _with_interleaving).
#include <gtest/gtest.h>

#include "loom/core/error.h"
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

TEST(PipelineSchedule, ZeroBubbleH1) {
  // The authors' ZeroBubbleH1Pipeline (exact semantics), P=4, M=6: stage s runs P - s - 1 forwards,
  // s (F, B) pairs, (F, B, W) triples, (B, W) pairs, then its s deferred W; W in micro-batch order.
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::ZeroBubble, 4, 0, 6, 1)),
            "F0.0 F1.0 F2.0 F3.0 B0.0 W0.0 F4.0 B1.0 W1.0 F5.0 B2.0 W2.0 B3.0 W3.0 B4.0 W4.0 B5.0 W5.0");
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::ZeroBubble, 4, 1, 6, 1)),
            "F0.0 F1.0 F2.0 B0.0 F3.0 B1.0 W0.0 F4.0 B2.0 W1.0 F5.0 B3.0 W2.0 B4.0 W3.0 B5.0 W4.0 W5.0");
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::ZeroBubble, 4, 3, 6, 1)),
            "F0.0 B0.0 F1.0 B1.0 F2.0 B2.0 F3.0 B3.0 W0.0 F4.0 B4.0 W1.0 F5.0 B5.0 W2.0 W3.0 W4.0 W5.0");
  // Fewer micro-batches than stages.
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::ZeroBubble, 4, 0, 2, 1)), "F0.0 F1.0 B0.0 W0.0 B1.0 W1.0");
  EXPECT_EQ(describe(pipeline_ops(PipelineSchedule::ZeroBubble, 4, 3, 2, 1)), "F0.0 B0.0 F1.0 B1.0 W0.0 W1.0");
  // Every stage holds P micro-batches from forward to W (1F1B's first stage, its most).
  for (int rank = 0; rank < 4; rank++) {
    const auto ops = pipeline_ops(PipelineSchedule::ZeroBubble, 4, rank, 8, 1);
    ASSERT_EQ(ops.size(), 24u);
    EXPECT_EQ(max_in_flight(ops, 0), 4);
    int f = 0, b = 0, w = 0;  // each kind in micro-batch order, B after its F, W after its B
    for (const PipeOp& op : ops) {
      if (op.forward) {
        EXPECT_EQ(op.micro, f++);
      } else if (op.weight) {
        EXPECT_EQ(op.micro, w++);
        EXPECT_LT(op.micro, b);
      } else {
        EXPECT_EQ(op.micro, b++);
        EXPECT_LT(op.micro, f);
      }
    }
  }
  EXPECT_EQ(parse_pipeline_schedule("zero-bubble"), PipelineSchedule::ZeroBubble);
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

#include "loom/models/decoder_model.h"

TEST(PipelineSplit, EvenAndExplicitFirstLast) {
  auto s = decoder_pipeline_chunks(8, 4, 1, 1);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].first_block, 2);
  EXPECT_EQ(s[0].num_blocks, 2);
  EXPECT_FALSE(s[0].embedding);
  EXPECT_THROW(decoder_pipeline_chunks(9, 4, 1, 0), UserError);
  auto f = decoder_pipeline_chunks(9, 4, 1, 3, 3, 2);  // 3 + (2, 2) + 2
  EXPECT_EQ(f[0].first_block, 7);
  EXPECT_EQ(f[0].num_blocks, 2);
  EXPECT_TRUE(f[0].head);
  // Virtual stages: chunk c of rank r holds virtual stage c * P + r.
  auto v = decoder_pipeline_chunks(8, 2, 2, 1);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].first_block, 2);
  EXPECT_EQ(v[1].first_block, 6);
  EXPECT_TRUE(v[1].head);
}

TEST(PipelineSplit, CostBalancesTheOutputLayer) {
  // A heavy output layer (as in reference log 003, where it made the last stage 2.7x slower) pushes blocks
  // to the earlier stages.
  EXPECT_EQ(split_by_cost({1, 1, 1, 1, 1, 1, 1, 10}, 2), (std::vector<int>{5, 1}));
  EXPECT_EQ(split_by_cost({0, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 4), (std::vector<int>{2, 2, 2, 2}));
  std::vector<double> costs = {0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4};  // 16 blocks, P = 8
  auto counts = split_by_cost(costs, 8);
  int total = 0;
  for (int c : counts) {
    EXPECT_GE(c, 1);
    total += c;
  }
  EXPECT_EQ(total, 16);
  EXPECT_EQ(counts.back(), 1);  // the output layer's stage keeps one block
  EXPECT_THROW(split_by_cost({1, 1, 1}, 2), UserError);
}
