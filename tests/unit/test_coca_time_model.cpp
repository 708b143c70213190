// plan/coca_time_model: the FLOPs of CoCa's pieces from their shapes, written out here term by term,
// and the rows of a step on a device whose rates are flat (every GEMM 1 TFLOP/s, memory 100 GB/s).
#include <gtest/gtest.h>

#include "loom/models/coca/coca_config.h"
#include "loom/plan/coca_time_model.h"
#include "loom/plan/collective_model.h"

namespace {

using loom::ComputeDType;

double row(const loom::StepPrediction& p, const std::string& name) {
  for (const auto& r : p.rows)
    if (r.name == name) return r.seconds;
  ADD_FAILURE() << "no row " << name;
  return 0;
}

loom::Hardware flat() {
  loom::Hardware h;
  h.name = "flat";
  h.peak_fp32 = h.peak_fp16 = h.peak_bf16 = 1e12;
  h.gemm_table = {{1, 1, 1, ComputeDType::kFp32, 1e12}, {1, 1, 1, ComputeDType::kFp16, 1e12}};
  h.memory_bytes = 1e12, h.memory_bandwidth = 1e11, h.memory_efficiency = 1;
  h.attention_efficiency = 1, h.attention_backward_ratio = 2.5, h.fused_attention = true;
  h.intra_node_bandwidth = h.inter_node_bandwidth = 1e10, h.intra_node_latency = h.inter_node_latency = 1e-5;
  h.link_efficiency = 1, h.gpus_per_node = 8, h.host_bandwidth = 1e10;
  return h;
}

// Forward multiply-adds x 2 of one sample, piece by piece.
double expected_flops(const loom::CocaConfig& c) {
  const auto& v = c.vision;
  const double Tv = v.tokens(), w = v.width, f = v.mlp_hidden, P = v.num_patches();
  const double vision_block = 2 * Tv * (4 * w * w + 3 * w * f) + 4 * v.heads * Tv * Tv * v.head_dim();
  const double T = c.text.context_length, tw = c.text.width;
  auto clip_block = [&](double width, double mlp, double heads) {
    return 2 * T * (4 * width * width + 2 * width * mlp) + 0.5 * 4 * heads * T * T * (width / heads);
  };
  const double Q = c.pooler.queries, E = c.embed_dim, dw = c.decoder.width;
  const double cross = 2 * T * (2 * dw * dw + 2 * dw * c.decoder.mlp_hidden) + 2 * Q * 2 * dw * dw +
                       4 * c.decoder.heads * T * Q * (dw / c.decoder.heads);
  auto pool = [&](double q, double ctx, double cw) {
    return 2 * q * 2 * E * E + 2 * ctx * 2 * E * cw + 4 * c.pooler.heads * q * ctx * (E / c.pooler.heads);
  };
  return v.layers * vision_block + c.text.layers * clip_block(tw, c.text.mlp_hidden, c.text.heads) +
         c.decoder.layers * (clip_block(dw, c.decoder.mlp_hidden, c.decoder.heads) + cross) +
         2 * P * w * 3 * v.patch_size * v.patch_size + pool(Q, Tv, w) + pool(1, Q, E) + 2 * E * E + 2 * E * tw +
         2 * T * c.decoder.vocab_size * dw + 2 * 2 * E;  // contrastive logits: 1 sample against 1
}

TEST(CocaTimeModel, ForwardFlopsFromTheShapes) {
  const loom::CocaConfig c = loom::coca_b16_config();
  EXPECT_NEAR(loom::coca_forward_flops_per_sample(c), expected_flops(c), 1e-6 * expected_flops(c));
  // About 61 GFLOP a sample: the analysis of log 000 estimates 57.
  EXPECT_NEAR(loom::coca_forward_flops_per_sample(c) / 1e9, 61, 2);
}

TEST(CocaTimeModel, RowsOnAFlatDevice) {
  const loom::CocaConfig c = loom::coca_b16_config();
  const loom::Hardware hw = flat();
  loom::CocaLayout l;
  l.batch = 4, l.dp = 1, l.dtype = ComputeDType::kFp16, l.activation_bytes = 2;
  const auto p = loom::predict_coca_step(c, l, hw);
  // Every GEMM at 1 TFLOP/s; attention at the peak: the forward's GEMMs and attention are its FLOPs (four
  // samples, whose contrastive logits are 4 x 4, not 4 x 1 x 1).
  const double flops = 4 * loom::coca_forward_flops_per_sample(c) + 2.0 * 2 * 512 * (4 * 4 - 4);
  EXPECT_NEAR(row(p, "forward GEMMs") + row(p, "forward attention"), flops / 1e12, 1e-9);
  EXPECT_NEAR(row(p, "backward GEMMs"), 2 * row(p, "forward GEMMs"), 1e-9);
  EXPECT_NEAR(row(p, "backward attention"), 2.5 * row(p, "forward attention"), 1e-12);
  EXPECT_DOUBLE_EQ(row(p, "recompute"), 0);
  EXPECT_DOUBLE_EQ(row(p, "data-parallel gradient reduction"), 0);
  double sum = 0;
  for (const auto& r : p.rows) sum += r.seconds;
  EXPECT_DOUBLE_EQ(sum, p.step_seconds);
  EXPECT_DOUBLE_EQ(p.tokens_per_s_per_gpu, 4 / p.step_seconds);
  EXPECT_DOUBLE_EQ(p.model_flops, 3 * flops);
  // Gradient checkpointing repeats the blocks' forward: more than their GEMMs' share, less than the forward.
  l.grad_checkpointing = true;
  const auto r = loom::predict_coca_step(c, l, hw);
  EXPECT_GT(row(r, "recompute"), 0.8 * row(p, "forward GEMMs"));
  EXPECT_LT(row(r, "recompute"), row(p, "forward GEMMs") + row(p, "forward attention") + row(p, "forward memory-bound kernels"));
  EXPECT_DOUBLE_EQ(r.step_seconds, p.step_seconds + row(r, "recompute"));
}

TEST(CocaTimeModel, DataParallelZeroAndLamb) {
  const loom::CocaConfig c = loom::coca_b16_config();
  const loom::Hardware hw = flat();
  const double params = double(loom::coca_parameter_counts(c).total);
  const loom::Link link{1e10, 1e-5};
  loom::CocaLayout l;
  l.batch = 2, l.dp = 4, l.dtype = ComputeDType::kFp16, l.activation_bytes = 2;
  auto p = loom::predict_coca_step(c, l, hw);
  EXPECT_DOUBLE_EQ(row(p, "data-parallel gradient reduction"), loom::all_reduce_time(2 * params, 4, link));
  EXPECT_DOUBLE_EQ(row(p, "optimizer step"), params * (28 + 6) / 1e11);
  // Both towers' features (fp32, B x dp x E each) gathered forward, their gradients reduce-scattered.
  const double features = 2.0 * 2 * 4 * 512 * 4;
  EXPECT_DOUBLE_EQ(row(p, "contrastive feature exchange"),
                   loom::all_gather_time(features, 4, link) + loom::reduce_scatter_time(features, 4, link));
  // ZeRO-1 with LAMB (log 000): reduce-scatter, the updated fp16 weights all-gathered, a quarter of the step.
  l.zero_stage = 1, l.lamb = true;
  p = loom::predict_coca_step(c, l, hw);
  EXPECT_DOUBLE_EQ(row(p, "data-parallel gradient reduction"), loom::reduce_scatter_time(2 * params, 4, link));
  EXPECT_DOUBLE_EQ(row(p, "ZeRO parameter gathers"), loom::all_gather_time(2 * params, 4, link));
  EXPECT_DOUBLE_EQ(row(p, "optimizer step"), params / 4 * (40 + 6) / 1e11);
}

}  // namespace
