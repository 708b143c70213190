// Megatron's theoretical memory report (theoretical_memory_usage.py, megatron-core 0.12): reference log 004
// line for line, and other configurations whose expected text and values come from running Megatron's
// own functions (core_v0.12.2) on the same arguments.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/plan/memory_report.h"

namespace {

using loom::MemoryPlanConfig;
using loom::RecomputeGranularity;

MemoryPlanConfig log004() {
  // --num-layers 16 --hidden-size 2048 --num-attention-heads 32 --ffn-hidden-size 8192 --seq-length 2048,
  // vocab 50257 padded to 50432 at TP 2; TP 2, PP 4, 1 layer per virtual stage (VPP 4), DP 1;
  // micro-batch 2, global batch 16 (8 micro-batches); --fp16 --recompute-activations; no SP, no
  // distributed optimizer.
  MemoryPlanConfig c;
  c.num_layers = 16;
  c.hidden_size = 2048;
  c.num_attention_heads = 32;
  c.ffn_hidden_size = 8192;
  c.seq_length = 2048;
  c.padded_vocab_size = 50432;
  c.tensor_parallel = 2;
  c.pipeline_parallel = 4;
  c.virtual_pipeline_parallel = 4;
  c.data_parallel = 1;
  c.micro_batch_size = 2;
  c.num_micro_batches = 8;
  c.precision = loom::Precision::kFp16;
  c.recompute = RecomputeGranularity::kSelective;
  return c;
}

TEST(MemoryReport, ReferenceLog004Lines) {
  const auto m = loom::theoretical_memory(log004());
  const std::vector<std::string> want = {
      "Number of parameters in transformer block in billions:  0.81",
      "Number of parameters in embedding layers in billions: 0.10",
      "Total number of parameters in billions: 0.91",
      "Number of parameters in most loaded shard in billions: 0.1523",
      "Number of parameters in other shards in billions: 0.1007",
      "Theoretical memory footprints: weight and optimizer=2614.79 MB",
  };
  EXPECT_EQ(m.lines, want);
  // The counts behind the rounded lines (see analysis-002-004: no biases, no position embedding).
  EXPECT_EQ(m.transformer_block, 805441536.0);
  EXPECT_EQ(m.embedding_layers, 103284736.0);
  EXPECT_EQ(m.total, 908726272.0);
  EXPECT_EQ(m.most_loaded_shard, 152322560.0);
  EXPECT_EQ(*m.other_shards, 100680192.0);
  EXPECT_EQ(m.bytes_per_parameter, 18.0);
  EXPECT_EQ(m.weight_and_optimizer_mb, 2614.7900390625);
  EXPECT_FALSE(m.activation_mb);  // no sequence parallelism: Megatron 0.12 prints no activation estimate
  EXPECT_EQ(loom::format_theoretical_memory(m), want[0] + "\n" + want[1] + "\n" + want[2] + "\n" + want[3] + "\n" +
                                                    want[4] + "\n" + want[5] + "\n");
}

TEST(MemoryReport, ActivationsWithSequenceParallelAndInterleaving) {
  auto c = log004();
  c.sequence_parallel = true;
  const auto m = loom::theoretical_memory(c);
  const std::vector<std::string> want = {
      "Number of parameters in transformer block in billions:  0.81",
      "Number of parameters in embedding layers in billions: 0.10",
      "Total number of parameters in billions: 0.91",
      "Number of parameters in most loaded shard in billions: 0.1523",
      "Number of parameters in other shards in billions: 0.1007",
      "Activation memory footprint per transformer layer: 136.0 MB",
      "Memory penalty from interleaved schedule: 1.19",
      "Number of in-flight microbatches: 5",
      "Theoretical memory footprints: weight and optimizer=2614.79 MB, activation=2603.07 MB, total=5217.86 MB",
      "",
  };
  EXPECT_EQ(m.lines, want);
  EXPECT_EQ(*m.activation_mb, 2603.07421875);
  // Full recompute: Megatron's formula does not apply, only the weight line.
  c.recompute = RecomputeGranularity::kFull;
  EXPECT_EQ(loom::theoretical_memory(c).lines.back(), "Theoretical memory footprints: weight and optimizer=2614.79 MB");
}

TEST(MemoryReport, SinglePipelineStageGpt2Xl) {
  // Reference log 002's model (TP 1, PP 1): the embedding counted once (tied), 18 bytes per parameter.
  MemoryPlanConfig c;
  c.num_layers = 48;
  c.hidden_size = 1600;
  c.num_attention_heads = 25;
  c.ffn_hidden_size = 6400;
  c.seq_length = 1024;
  c.padded_vocab_size = 50304;
  c.micro_batch_size = 8;
  c.num_micro_batches = 8;
  c.recompute = RecomputeGranularity::kFull;
  const auto m = loom::theoretical_memory(c);
  const std::vector<std::string> want = {
      "Number of parameters in transformer block in billions:  1.47",
      "Number of parameters in embedding layers in billions: 0.08",
      "Total number of parameters in billions: 1.56",
      "Number of parameters in most loaded shard in billions: 1.5554",
      "Theoretical memory footprints: weight and optimizer=26699.47 MB",
  };
  EXPECT_EQ(m.lines, want);
  EXPECT_EQ(m.weight_and_optimizer_mb, 26699.468994140625);
  EXPECT_FALSE(m.other_shards);
}

TEST(MemoryReport, DistributedOptimizerUntiedOutputLogits) {
  // PP 1 with untied output weights: the output layer joins the most loaded shard; 6 + 12/3 bytes per
  // parameter; the activation estimate adds the logits and cross-entropy inputs.
  MemoryPlanConfig c;
  c.num_layers = 24;
  c.hidden_size = 1024;
  c.num_attention_heads = 16;
  c.ffn_hidden_size = 4096;
  c.seq_length = 1024;
  c.padded_vocab_size = 50304;
  c.tensor_parallel = 2;
  c.data_parallel = 3;
  c.micro_batch_size = 4;
  c.num_micro_batches = 2;
  c.sequence_parallel = true;
  c.use_distributed_optimizer = true;
  c.untie_embeddings_and_output_weights = true;
  c.recompute = RecomputeGranularity::kSelective;
  const auto m = loom::theoretical_memory(c);
  const std::vector<std::string> want = {
      "Number of parameters in transformer block in billions:  0.30",
      "Number of parameters in embedding layers in billions: 0.10",
      "Total number of parameters in billions: 0.41",
      "Number of parameters in most loaded shard in billions: 0.2026",
      "Activation memory footprint per transformer layer: 68.0 MB",
      "Theoretical memory footprints: weight and optimizer=1931.73 MB, activation=2035.02 MB, total=3966.74 MB",
      "",
  };
  EXPECT_EQ(m.lines, want);
  EXPECT_EQ(m.bytes_per_parameter, 10.0);
  EXPECT_EQ(m.weight_and_optimizer_mb, 1931.728515625);
  EXPECT_EQ(*m.activation_mb, 2035.015625);
}

TEST(MemoryReport, NonInterleavedPipelineFewMicroBatches) {
  // PP 4 without virtual stages and only 3 micro-batches: activations scaled by 3/4.
  MemoryPlanConfig c;
  c.num_layers = 24;
  c.hidden_size = 1024;
  c.num_attention_heads = 16;
  c.ffn_hidden_size = 4096;
  c.seq_length = 1024;
  c.padded_vocab_size = 50432;
  c.tensor_parallel = 2;
  c.pipeline_parallel = 4;
  c.data_parallel = 4;
  c.micro_batch_size = 1;
  c.num_micro_batches = 3;
  c.sequence_parallel = true;
  c.use_distributed_optimizer = true;
  c.recompute = RecomputeGranularity::kSelective;
  const auto m = loom::theoretical_memory(c);
  const std::vector<std::string> want = {
      "Number of parameters in transformer block in billions:  0.30",
      "Number of parameters in embedding layers in billions: 0.05",
      "Total number of parameters in billions: 0.35",
      "Number of parameters in most loaded shard in billions: 0.0636",
      "Number of parameters in other shards in billions: 0.0378",
      "Activation memory footprint per transformer layer: 17.0 MB",
      "Number of in-flight microbatches: 3",
      "Theoretical memory footprints: weight and optimizer=545.73 MB, activation=307.51 MB, total=853.24 MB",
      "",
  };
  EXPECT_EQ(m.lines, want);
  EXPECT_EQ(m.weight_and_optimizer_mb, 545.732666015625);
  EXPECT_EQ(*m.activation_mb, 307.51171875);
}

TEST(MemoryReport, GroupedQueryAttention) {
  MemoryPlanConfig c;
  c.num_layers = 4;
  c.hidden_size = 512;
  c.num_attention_heads = 8;
  c.num_query_groups = 2;
  c.ffn_hidden_size = 1376;
  c.seq_length = 256;
  c.padded_vocab_size = 32000;
  const auto m = loom::theoretical_memory(c);
  EXPECT_EQ(m.lines.back(), "Theoretical memory footprints: weight and optimizer=423.16 MB");
  EXPECT_EQ(m.weight_and_optimizer_mb, 423.158203125);
}

TEST(MemoryReport, RejectsBadSizes) {
  auto c = log004();
  c.pipeline_parallel = 0;
  EXPECT_THROW(loom::theoretical_memory(c), loom::UserError);
  c = log004();
  c.hidden_size = 0;
  EXPECT_THROW(loom::theoretical_memory(c), loom::UserError);
}

}  // namespace
