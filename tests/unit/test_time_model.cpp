// The iteration time model's terms against independent arithmetic: on a device whose GEMMs all run at one
// rate and whose links are free or known, each row of the table is a formula of the shapes.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>

#include "loom/core/error.h"
#include "loom/models/decoder_counts.h"
#include "loom/plan/collective_model.h"
#include "loom/plan/layout_search.h"
#include "loom/plan/time_model.h"

namespace {

using loom::PlanLayout;
using loom::RecomputeGranularity;

loom::ModelConfig gpt(int layers = 8, int h = 1024, int heads = 16, int seq = 1024) {
  loom::ModelConfig c;
  c.num_layers = layers, c.hidden_size = h, c.num_attention_heads = heads, c.ffn_hidden_size = 4 * h;
  c.seq_length = seq, c.max_position_embeddings = seq, c.vocab_size = 50257, c.padded_vocab_size = 50304;
  return c;
}

// GEMMs at 1e12 FLOP/s whatever their shape (one measured sample at the smallest intensity), links of
// 1e10 B/s and 1e-5 s.
loom::Hardware flat() {
  loom::Hardware h;
  h.name = "flat";
  h.peak_fp32 = h.peak_fp16 = h.peak_bf16 = 2e12;
  h.gemm_table = {{1, 1, 1, loom::ComputeDType::kFp32, 1e12}};
  h.memory_bytes = 1e12, h.memory_bandwidth = 1e11, h.memory_efficiency = 1;
  h.intra_node_bandwidth = h.inter_node_bandwidth = 1e10, h.intra_node_latency = h.inter_node_latency = 1e-5;
  h.link_efficiency = 1, h.gpus_per_node = 8, h.host_bandwidth = 1e10;
  return h;
}

double row(const loom::StepPrediction& p, const std::string& name) {
  for (const auto& r : p.rows)
    if (r.name == name) return r.seconds;
  ADD_FAILURE() << "no row " << name;
  return 0;
}

TEST(TimeModel, GemmRowsAreFlopsOverRate) {
  const loom::ModelConfig c = gpt();
  PlanLayout l;
  l.micro_batch = 2, l.global_batch = 8;  // 4 micro-batches
  const auto p = loom::predict_step(c, l, flat());
  const double N = 2.0 * 1024, h = 1024;
  // QKV 3h, projection h, fc1 4h, fc2 4h wide; logits over the padded vocabulary.
  const double layer = 2 * N * h * (3 * h + h + 4 * h + 4 * h);
  const double fwd = 8 * layer + 2 * N * h * 50304;
  EXPECT_NEAR(row(p, "forward GEMMs"), 4 * fwd / 1e12, 1e-12);
  EXPECT_NEAR(row(p, "backward GEMMs"), 2 * 4 * fwd / 1e12, 1e-12);
  // Megatron's line: tokens per second per GPU from the step time.
  EXPECT_DOUBLE_EQ(p.tokens_per_s_per_gpu, 8 * 1024 / p.step_seconds);
  double sum = 0;
  for (const auto& r : p.rows) sum += r.seconds;
  EXPECT_DOUBLE_EQ(sum, p.step_seconds);
  // Full recompute repeats the forward; selective only the attention core.
  l.recompute = RecomputeGranularity::kFull;
  const auto f = loom::predict_step(c, l, flat());
  // (the layers' forward: more than their GEMMs, less than the whole forward with embedding and head)
  EXPECT_GT(row(f, "recompute"), 4 * 8 * layer / 1e12);
  EXPECT_LT(row(f, "recompute"),
            row(p, "forward GEMMs") + row(p, "forward attention") + row(p, "forward memory-bound kernels"));
  l.recompute = RecomputeGranularity::kSelective;
  EXPECT_DOUBLE_EQ(row(loom::predict_step(c, l, flat()), "recompute"), row(p, "forward attention"));
}

// Each form reads its own samples (a linear layer's forward NT, input gradient NN, weight gradient TN),
// and the output layer's GEMMs are timed on kLmHeadChunkRows-token chunks as the fused kernel runs them.
TEST(TimeModel, GemmFormsAndOutputLayerChunks) {
  const loom::ModelConfig c = gpt(1);
  PlanLayout l;
  l.micro_batch = 1, l.global_batch = 1;  // 1024 tokens: two 512-row chunks of logits
  loom::Hardware h = flat();
  const auto f32 = loom::ComputeDType::kFp32;
  // Every GEMM of the model measured: the layers' at 1, 0.5 and 0.25 PFLOP/s in the three forms, the
  // output layer's chunk (512 x 50304 x 1024 forward) at 0.8, 0.4 and 0.2.
  h.gemm_table.clear();
  auto measured = [&](int64_t m, int64_t n, int64_t k, double nt) {
    h.gemm_table.push_back({m, n, k, f32, nt, loom::GemmOp::kNT});
    h.gemm_table.push_back({m, k, n, f32, nt / 2, loom::GemmOp::kNN});
    h.gemm_table.push_back({n, k, m, f32, nt / 4, loom::GemmOp::kTN});
  };
  for (int64_t out : {3 * 1024, 1024, 4 * 1024}) measured(1024, out, 1024, 1e12);
  measured(1024, 1024, 4 * 1024, 1e12);
  measured(512, 50304, 1024, 0.8e12);
  const auto p = loom::predict_step(c, l, h);
  const double N = 1024, w = 1024;
  const double layer = 2 * N * w * (3 * w + w + 4 * w + 4 * w), head = 2 * N * w * 50304;
  EXPECT_NEAR(row(p, "forward GEMMs"), layer / 1e12 + head / 0.8e12, 1e-12);
  EXPECT_NEAR(row(p, "backward GEMMs"), layer / 0.5e12 + layer / 0.25e12 + head / 0.4e12 + head / 0.2e12, 1e-12);
}

// The cross-entropy's memory traffic: Megatron's unfused passes on a datasheet device, Loom's one fused
// pass on a calibrated one (the same machine otherwise).
TEST(TimeModel, CrossEntropyTrafficByEngine) {
  const loom::ModelConfig c = gpt(1);
  PlanLayout l;
  l.micro_batch = 2, l.global_batch = 2;
  const loom::Hardware loom_engine = flat();
  loom::Hardware megatron = flat();
  megatron.gemm_table.clear();  // a datasheet device: roofline GEMMs at the same peak
  megatron.gemm_efficiency = 1;
  ASSERT_TRUE(loom::is_calibrated(loom_engine));
  ASSERT_FALSE(loom::is_calibrated(megatron));
  const auto a = loom::predict_step(c, l, loom_engine), b = loom::predict_step(c, l, megatron);
  const double logits = 2.0 * 1024 * 50304, bw = 1e11;
  // Forward: 9 x 4 + 4 (the fp32 copy's read) bytes a logit against Loom's 2 x 4; backward 3 x 4 + 4 against 0.
  EXPECT_NEAR(row(b, "forward memory-bound kernels") - row(a, "forward memory-bound kernels"), logits * (40 - 8) / bw, 1e-9);
  EXPECT_NEAR(row(b, "backward memory-bound kernels") - row(a, "backward memory-bound kernels"), logits * 16 / bw, 1e-9);
  // A vocabulary shard of Loom's makes three passes (20 bytes a logit of its shard) against Megatron's 40;
  // at TP2 the vocabulary pads to a multiple of 256 (50432), half of it on each rank.
  l.tp = 2;
  const auto s = loom::predict_step(c, l, loom_engine), t = loom::predict_step(c, l, megatron);
  const double shard = 2.0 * 1024 * 50432 / 2;
  EXPECT_NEAR(row(t, "forward memory-bound kernels") - row(s, "forward memory-bound kernels"), shard * (40 - 20) / bw, 1e-9);
}

TEST(TimeModel, DataParallelReductionAndOptimizer) {
  const loom::ModelConfig c = gpt();
  const loom::Hardware hw = flat();
  PlanLayout l;
  l.dp = 4, l.global_batch = 8;
  const double params = double(loom::decoder_total_params(c, 1));
  const loom::Link link{1e10, 1e-5};
  auto p = loom::predict_step(c, l, hw);
  EXPECT_DOUBLE_EQ(row(p, "data-parallel gradient reduction"), loom::all_reduce_time(4 * params, 4, link));
  EXPECT_DOUBLE_EQ(row(p, "optimizer step"), params * 28 / 1e11);
  // ZeRO-1: reduce-scatter of the gradients, all-gather of the updated weights, a quarter of the step.
  l.zero_stage = 1;
  p = loom::predict_step(c, l, hw);
  EXPECT_DOUBLE_EQ(row(p, "data-parallel gradient reduction"), loom::reduce_scatter_time(4 * params, 4, link));
  EXPECT_DOUBLE_EQ(row(p, "ZeRO parameter gathers"), loom::all_gather_time(4 * params, 4, link));
  EXPECT_DOUBLE_EQ(row(p, "optimizer step"), params / 4 * 28 / 1e11);
  // ZeRO-3: every micro-batch gathers the weights twice and reduce-scatters its gradients.
  l.zero_stage = 3;
  p = loom::predict_step(c, l, hw);
  EXPECT_DOUBLE_EQ(row(p, "ZeRO parameter gathers"), 2 * 2 * loom::all_gather_time(4 * params, 4, link));
  EXPECT_DOUBLE_EQ(row(p, "data-parallel gradient reduction"), 2 * loom::reduce_scatter_time(4 * params, 4, link));
  // A machine whose all-gather runs at 1.5x and reduce-scatter at 0.3x the all-reduce's bandwidth.
  loom::Hardware slow_rs = hw;
  slow_rs.all_gather_factor = 1.5, slow_rs.reduce_scatter_factor = 0.3;
  loom::Link measured = link;
  measured.all_gather_factor = 1.5, measured.reduce_scatter_factor = 0.3;
  p = loom::predict_step(c, l, slow_rs);
  EXPECT_DOUBLE_EQ(row(p, "ZeRO parameter gathers"), 2 * 2 * loom::all_gather_time(4 * params, 4, measured));
  EXPECT_DOUBLE_EQ(row(p, "data-parallel gradient reduction"), 2 * loom::reduce_scatter_time(4 * params, 4, measured));
  EXPECT_LT(loom::all_gather_time(4 * params, 4, measured), loom::all_gather_time(4 * params, 4, link));
}

TEST(TimeModel, ModelStates) {
  // Megatron's 18 bytes per parameter, 6 + 12 / DP with the distributed optimizer; ZeRO-2 and 3.
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 4, 0, 8, false), 18);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 4, 1, 8, false), 6 + 12.0 / 8);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 4, 2, 8, false), 2 + 16.0 / 8);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 4, 3, 8, false), 18.0 / 8);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(false, 4, 0, 1, false), 16);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 4, 0, 1, true), 6);
  // Loom's --fp16 (README): 16P, 4P + 12P/N, 2P + 14P/N, 16P/N.
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 2, 0, 4, false), 16);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 2, 1, 4, false), 4 + 12.0 / 4);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 2, 2, 4, false), 2 + 14.0 / 4);
  EXPECT_DOUBLE_EQ(loom::model_state_bytes_per_param(true, 2, 3, 4, false), 16.0 / 4);
}

TEST(TimeModel, TensorParallelCommunication) {
  const loom::ModelConfig c = gpt();
  PlanLayout l;
  l.tp = 4, l.micro_batch = 2, l.activation_bytes = 2;
  auto t = loom::tp_layer_comm(c, l);
  EXPECT_EQ(t.all_reduces, 2);
  EXPECT_DOUBLE_EQ(t.tensor_bytes, 1024.0 * 2 * 1024 * 2);
  l.sequence_parallel = true;
  t = loom::tp_layer_comm(c, l);
  EXPECT_EQ(t.all_reduces, 0);
  EXPECT_EQ(t.all_gathers, 2);
  EXPECT_EQ(t.reduce_scatters, 2);
  // Per layer and micro-batch, forward and backward: four all-reduces of s b h (no SP).
  l.sequence_parallel = false;
  l.global_batch = 2;
  loom::Hardware hw = flat();
  const auto p = loom::predict_step(c, l, hw);
  const loom::Link link{1e10, 1e-5};
  const double layer = 4 * loom::all_reduce_time(t.tensor_bytes, 4, link);
  const double embed = loom::all_reduce_time(t.tensor_bytes, 4, link), head = embed;
  EXPECT_NEAR(row(p, "tensor-parallel collectives"), 8 * layer + embed + head, 1e-15);
}

TEST(TimeModel, InterleavingDividesTheBubble) {
  const loom::ModelConfig c = gpt();
  loom::Hardware hw = flat();
  hw.intra_node_latency = 0, hw.intra_node_bandwidth = 1e30;  // free send/recv: stages differ only in work
  PlanLayout l;
  l.pp = 4, l.global_batch = 8;
  const double b1 = row(loom::predict_step(c, l, hw), "pipeline bubble");
  l.vpp = 2, l.schedule = loom::PipelineSchedule::Interleaved;
  const double b2 = row(loom::predict_step(c, l, hw), "pipeline bubble");
  EXPECT_NEAR(b2, b1 / 2, 1e-12 * b1);
  EXPECT_GT(b1, 0);
}

TEST(TimeModel, ZeroBubbleFillsTheBubbleWithWeightGradients) {
  // ZB-H1: every stage but the slowest adds F + B - W to the step instead of F + B + W. At one GEMM rate a
  // layer's weight-gradient GEMMs take as long as its forward GEMMs, 24 N h^2 FLOPs (QKV 3, projection 1,
  // fc1 4, fc2 4); the last stage (the 50304-word output layer) is the slowest, and the other three hold
  // two layers each.
  const loom::ModelConfig c = gpt();
  loom::Hardware hw = flat();
  hw.intra_node_latency = 0, hw.intra_node_bandwidth = 1e30;
  PlanLayout l;
  l.pp = 4, l.global_batch = 8;
  const loom::StepPrediction a = loom::predict_step(c, l, hw);
  l.schedule = loom::PipelineSchedule::ZeroBubble;
  const loom::StepPrediction z = loom::predict_step(c, l, hw);
  const double N = 1024, h = 1024, layer_wgrad = 24 * N * h * h / 1e12;
  EXPECT_NEAR(row(a, "pipeline bubble") - row(z, "pipeline bubble"), 2 * 3 * 2 * layer_wgrad, 1e-9);
  EXPECT_GT(row(z, "pipeline bubble"), 0);
  EXPECT_NEAR(a.step_seconds - z.step_seconds, 2 * 3 * 2 * layer_wgrad, 1e-9);
  // Memory: 4 micro-batches on the last stage instead of 1F1B's 1, with their kept output gradients.
  EXPECT_GT(z.activation_bytes, a.activation_bytes);
  EXPECT_NE(loom::layout_flags(l, c.num_layers).find(" --pipeline-schedule zero-bubble"), std::string::npos);
  l.recompute = RecomputeGranularity::kFull;
  EXPECT_EQ(loom::layout_problem(c, l), "the zero-bubble schedule runs without recompute");
  l.recompute = RecomputeGranularity::kNone, l.pp = 1;
  EXPECT_EQ(loom::layout_problem(c, l), "the zero-bubble schedule needs PP > 1");
}

TEST(TimeModel, LayoutProblems) {
  const loom::ModelConfig c = gpt();
  PlanLayout l;
  l.tp = 3;
  EXPECT_EQ(loom::layout_problem(c, l), "TP 3 does not divide the 16 heads");
  l.tp = 1, l.pp = 3;
  EXPECT_EQ(loom::layout_problem(c, l), "PP 3 x VPP 1 does not divide the 8 layers");
  EXPECT_THROW(loom::predict_step(c, l, flat()), loom::UserError);
  l.pp = 1, l.dp = 3, l.global_batch = 8;
  EXPECT_EQ(loom::layout_problem(c, l), "micro-batch 1 x DP 3 does not divide the global batch 8");
}

TEST(LayoutSearch, FixedFlagsAndErrors) {
  const loom::ModelConfig c = gpt(24, 2048, 32, 2048);
  loom::SearchSpace sp;
  sp.gpus = 16, sp.base.global_batch = 64, sp.base.dtype = loom::ComputeDType::kBf16, sp.base.activation_bytes = 2;
  sp.base.grad_reduce_bytes = 2;
  sp.tp = 2;
  const loom::Hardware a100 = loom::find_hardware("A100-80G");
  const auto r = loom::search_layouts(c, sp, a100);
  ASSERT_FALSE(r.fitting.empty());
  for (const auto& k : r.fitting) EXPECT_EQ(k.layout.tp, 2);
  // Without --pipeline-schedule, pipelines of one virtual stage are tried under 1F1B and zero-bubble.
  int zb = 0, f1b = 0;
  for (const auto& k : r.fitting) {
    zb += k.layout.schedule == loom::PipelineSchedule::ZeroBubble;
    f1b += k.layout.schedule == loom::PipelineSchedule::OneFOneB && k.layout.pp > 1;
    EXPECT_TRUE(k.layout.schedule != loom::PipelineSchedule::ZeroBubble || (k.layout.pp > 1 && k.layout.vpp == 1));
  }
  EXPECT_GT(zb, 0);
  EXPECT_GT(f1b, 0);
  sp.schedule = loom::PipelineSchedule::OneFOneB;  // fixed: no zero-bubble layout
  for (const auto& k : loom::search_layouts(c, sp, a100).fitting)
    EXPECT_NE(k.layout.schedule, loom::PipelineSchedule::ZeroBubble);
  sp.schedule.reset();
  for (size_t i = 1; i < r.fitting.size(); i++)
    EXPECT_LE(r.fitting[i - 1].prediction.step_seconds, r.fitting[i].prediction.step_seconds);
  // 7 GPUs: TP 7 splits no head count, PP 7 no layer count, DP 7 no batch of 64.
  sp.gpus = 7, sp.tp.reset();
  try {
    loom::search_layouts(c, sp, a100);
    ADD_FAILURE() << "7 GPUs searched";
  } catch (const loom::UserError& e) {
    EXPECT_EQ(std::string(e.what()), "no layout of 7 GPUs divides the model (24 layers, 32 heads, global batch 64) with the fixed flags");
  }
  // Too big for two 24 GB boards whatever the layout.
  sp.gpus = 2;
  const loom::ModelConfig huge = gpt(96, 12288, 96, 2048);
  try {
    loom::search_layouts(huge, sp, loom::find_hardware("RTX4090"));
    ADD_FAILURE() << "175B fitted on two 4090s";
  } catch (const loom::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("the model fits on no layout of 2 x RTX4090: the smallest ("), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(" more than the 22.80 GiB usable"), std::string::npos) << e.what();
  }
}

TEST(LayoutSearch, ThousandGpusQuickly) {
  // GPT-3 175B (Narayanan et al. 2021, Table 1) on 1024 GPUs, batch 1536: the whole space in seconds.
  loom::ModelConfig c = gpt(96, 12288, 96, 2048);
  loom::SearchSpace sp;
  sp.gpus = 1024, sp.base.global_batch = 1536, sp.base.dtype = loom::ComputeDType::kFp16;
  sp.base.activation_bytes = 2, sp.base.grad_reduce_bytes = 2;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = loom::search_layouts(c, sp, loom::find_hardware("A100-80G"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 30.0);
  EXPECT_GT(r.evaluated, 1000);
  ASSERT_FALSE(r.fitting.empty());
}

}  // namespace
