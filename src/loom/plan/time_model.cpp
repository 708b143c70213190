#include "loom/plan/time_model.h"

#include <algorithm>
#include <cmath>

#include "loom/core/error.h"
#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/plan/activation_model.h"
#include "loom/plan/collective_model.h"

namespace loom {
namespace {

// What one pipeline rank spends on one micro-batch (all of its virtual chunks), by kind.
struct StageCost {
  double fwd_gemm = 0, fwd_attention = 0, fwd_memory = 0;
  double bwd_gemm = 0, bwd_attention = 0, bwd_memory = 0;
  double recompute = 0, tp_comm = 0, p2p = 0;
  double wgrad_gemm = 0;  // the part of bwd_gemm that forms weight gradients (zero-bubble's deferred W)
  double forward() const { return fwd_gemm + fwd_attention + fwd_memory; }
  double backward() const { return bwd_gemm + bwd_attention + bwd_memory + recompute; }
  double total() const { return forward() + backward() + tp_comm + p2p; }
};

struct Gemm {
  int64_t m, n, k;
};

struct Ctx {
  const ModelConfig& c;
  const PlanLayout& l;
  const Hardware& hw;
  int64_t padded_vocab;
  Link tp_link, dp_link, pp_link;

  double gemm(const Gemm& g, GemmOp op = GemmOp::kNT) const {
    if (g.m <= 0 || g.n <= 0 || g.k <= 0) return 0.0;
    return 2.0 * double(g.m) * double(g.n) * double(g.k) / gemm_rate(hw, g.m, g.n, g.k, l.dtype, op);
  }
  // Forward GEMM (m, n, k) = X[m, k] W^T[k, n] (NT); its backward: dX = dY W (m, k, n; NN), dW += dY^T X
  // (n, k, m; TN), as layers/linear.cpp calls them.
  double fwd(const Gemm& g) const { return gemm(g, GemmOp::kNT); }
  double bwd(const Gemm& g) const { return gemm({g.m, g.k, g.n}, GemmOp::kNN) + wgrad(g); }
  double wgrad(const Gemm& g) const { return gemm({g.n, g.k, g.m}, GemmOp::kTN); }
  double memory(double bytes) const { return bytes / (hw.memory_bandwidth * hw.memory_efficiency); }
};


// One transformer layer, one micro-batch, on one tensor-parallel rank.
StageCost layer_cost(const Ctx& x) {
  const ModelConfig& c = x.c;
  const PlanLayout& l = x.l;
  const int64_t T = l.tp, N = int64_t(c.seq_length) * l.micro_batch, h = c.hidden_size;
  const double e = l.activation_bytes, repl = l.sequence_parallel ? double(T) : 1.0;
  StageCost s;
  const Gemm gemms[] = {{N, c.qkv_width() / T, h}, {N, h, c.attention_width() / T},
                        {N, c.fc1_width() / T, h}, {N, h, c.ffn_hidden_size / T}};
  for (const Gemm& g : gemms) s.fwd_gemm += x.fwd(g), s.bwd_gemm += x.bwd(g), s.wgrad_gemm += x.wgrad(g);

  // Core attention of this rank's heads.
  const int64_t heads = c.num_attention_heads / T, d = c.head_dim(), sq = c.seq_length;
  const double scores = double(l.micro_batch) * double(heads) * double(sq) * double(sq);
  double attn_recompute = 0;
  if (x.hw.fused_attention) {
    // Flash attention: 4 b s^2 a d FLOPs, half of them skipped under the causal mask.
    const double flops = 4.0 * scores * double(d) * (c.causal ? 0.5 : 1.0);
    const AttentionRates r = attention_rates(x.hw, l.dtype, double(sq), c.causal);
    s.fwd_attention = flops / r.forward;
    s.bwd_attention = x.hw.attention_table.empty() ? s.fwd_attention * x.hw.attention_backward_ratio : flops / r.backward;
    attn_recompute = s.fwd_attention;
  } else {
    // Materialised scores: QK^T and PV as batched GEMMs, softmax and dropout over b a s^2 elements
    // (forward: read and write the scores twice plus the 1-byte mask; backward about as much again).
    const double batch = double(l.micro_batch) * double(heads);
    const double g = batch * (x.gemm({sq, sq, d}) + x.gemm({sq, d, sq}));
    s.fwd_attention = g + x.memory(scores * (4.0 * e + 1.0));
    s.bwd_attention = 2.0 * g + x.memory(scores * (5.0 * e + 1.0));
    attn_recompute = s.fwd_attention;
  }

  // Memory-bound kernels: two norms (read, write), two bias-dropout-add (read two, write one, mask), the
  // activation (read fc1's output, write ffn), RoPE on queries and keys; the backward moves about twice.
  const double Nh = double(N) * double(h);
  double bytes = 2.0 * 2.0 * Nh * e / repl + 2.0 * (3.0 * Nh * e + Nh) / repl;
  bytes += double(N) * double(c.fc1_width() + c.ffn_hidden_size) / double(T) * e;
  if (c.position_embedding == PositionKind::Rope)
    bytes += 2.0 * double(N) * double(c.attention_width() + int64_t(c.query_groups()) * d) / double(T) * e;
  s.fwd_memory = x.memory(bytes);
  s.bwd_memory = 2.0 * s.fwd_memory;

  const TpLayerComm tc = tp_layer_comm(c, l);
  const double comm_fwd = tc.all_reduces * all_reduce_time(tc.tensor_bytes, l.tp, x.tp_link) +
                          tc.all_gathers * all_gather_time(tc.tensor_bytes, l.tp, x.tp_link) +
                          tc.reduce_scatters * reduce_scatter_time(tc.tensor_bytes, l.tp, x.tp_link);
  s.tp_comm = 2.0 * comm_fwd;  // the backward mirrors the forward's collectives

  if (l.recompute == RecomputeGranularity::kSelective) s.recompute = attn_recompute;
  if (l.recompute == RecomputeGranularity::kFull) s.recompute = s.forward(), s.tp_comm += comm_fwd;
  return s;
}

void add(StageCost& a, const StageCost& b, double times) {
  a.fwd_gemm += times * b.fwd_gemm, a.fwd_attention += times * b.fwd_attention, a.fwd_memory += times * b.fwd_memory;
  a.bwd_gemm += times * b.bwd_gemm, a.bwd_attention += times * b.bwd_attention, a.bwd_memory += times * b.bwd_memory;
  a.recompute += times * b.recompute, a.tp_comm += times * b.tp_comm, a.p2p += times * b.p2p;
  a.wgrad_gemm += times * b.wgrad_gemm;
}

// The embedding (first stage) and the final norm, output layer and cross-entropy (last stage).
StageCost embedding_cost(const Ctx& x) {
  const PlanLayout& l = x.l;
  const double Nh = double(x.c.seq_length) * l.micro_batch * x.c.hidden_size, e = l.activation_bytes;
  StageCost s;
  s.fwd_memory = x.memory(3.0 * Nh * e);  // gather word (and position) rows, dropout
  s.bwd_memory = x.memory(3.0 * Nh * e);  // scatter-add into the embedding gradient
  // Vocabulary-parallel embedding: all-reduce (reduce-scatter with sequence parallelism) of its output.
  s.tp_comm = l.sequence_parallel ? reduce_scatter_time(Nh * e, l.tp, x.tp_link) : all_reduce_time(Nh * e, l.tp, x.tp_link);
  return s;
}

StageCost head_cost(const Ctx& x) {
  const PlanLayout& l = x.l;
  const int64_t N = int64_t(x.c.seq_length) * l.micro_batch, v = x.padded_vocab / l.tp;
  const double Nh = double(N) * x.c.hidden_size, e = l.activation_bytes;
  StageCost s;
  // The fused output layer runs its three GEMMs on chunks of kLmHeadChunkRows tokens, each chunk's
  // weight gradient accumulating into the whole V x h gradient.
  const int64_t chunk = std::min<int64_t>(cpu::kLmHeadChunkRows, N), full = N / chunk, rest = N % chunk;
  for (const auto& [rows, times] : {std::pair<int64_t, int64_t>{chunk, full}, {rest, 1}}) {
    const Gemm logits{rows, v, x.c.hidden_size};
    s.fwd_gemm += times * x.fwd(logits), s.bwd_gemm += times * x.bwd(logits), s.wgrad_gemm += times * x.wgrad(logits);
  }
  // Final norm (read and write, forward and backward) and the cross-entropy (cross_entropy_traffic).
  const double norm = 2.0 * Nh * e / (l.sequence_parallel ? l.tp : 1);
  const CrossEntropyTraffic ce = cross_entropy_traffic(x.hw, double(N) * double(v), e, l.tp > 1);
  s.fwd_memory = x.memory(2.0 * norm + ce.forward);
  s.bwd_memory = x.memory(ce.backward + 2.0 * Nh * e);
  // Column-parallel output layer: its input gradient is all-reduced (sequence parallel: the input is
  // all-gathered forward and its gradient reduce-scattered backward).
  s.tp_comm = l.sequence_parallel ? all_gather_time(Nh * e, l.tp, x.tp_link) + reduce_scatter_time(Nh * e, l.tp, x.tp_link)
                                  : all_reduce_time(Nh * e, l.tp, x.tp_link);
  return s;
}

// Parameters on each tensor-parallel rank of pipeline rank `rank` (exact, as Loom allocates them).
int64_t stage_param_count(const ModelConfig& c, const PlanLayout& l, int rank) {
  int64_t n = int64_t(c.num_layers / l.pp) * transformer_layer_params(c, l.tp);
  if (rank == 0) n += embedding_params(c, l.tp);
  if (rank == l.pp - 1) {
    n += output_params(c, l.tp);
    if (l.pp > 1 && c.tie_embeddings) n += int64_t(c.padded_vocab_size) / l.tp * c.hidden_size;
  }
  return n;
}

}  // namespace

TpLayerComm tp_layer_comm(const ModelConfig& c, const PlanLayout& l) {
  TpLayerComm t;
  if (l.tp <= 1) return t;
  t.tensor_bytes = double(c.seq_length) * l.micro_batch * c.hidden_size * l.activation_bytes;
  if (l.sequence_parallel) t.all_gathers = 2, t.reduce_scatters = 2;
  else t.all_reduces = 2;
  return t;
}

double model_state_bytes_per_param(bool half, int grad_bytes, int zero, int dp, bool offload) {
  const double D = zero >= 1 ? dp : 1;
  const double weights = half ? 2.0 : 4.0, grads = grad_bytes, optim = half ? 12.0 : 8.0;
  const double w = zero >= 3 ? weights / dp : weights;
  const double g = zero >= 2 ? grads / dp : grads;
  const double o = offload ? 0.0 : optim / D;
  return w + g + o;
}

std::string layout_problem(const ModelConfig& c, const PlanLayout& l) {
  auto s = [](int64_t v) { return std::to_string(v); };
  if (l.tp < 1 || l.pp < 1 || l.dp < 1 || l.vpp < 1 || l.micro_batch < 1) return "parallel sizes must be positive";
  if (c.num_attention_heads % l.tp) return "TP " + s(l.tp) + " does not divide the " + s(c.num_attention_heads) + " heads";
  if (c.query_groups() % l.tp) return "TP " + s(l.tp) + " does not divide the " + s(c.query_groups()) + " query groups";
  if (c.ffn_hidden_size % l.tp) return "TP " + s(l.tp) + " does not divide the FFN width " + s(c.ffn_hidden_size);
  if (l.sequence_parallel && (l.tp == 1 || c.seq_length % l.tp)) return "sequence parallelism needs TP > 1 dividing the sequence";
  if (c.num_layers % (l.pp * l.vpp))
    return "PP " + s(l.pp) + " x VPP " + s(l.vpp) + " does not divide the " + s(c.num_layers) + " layers";
  if (l.vpp > 1 && (l.pp == 1 || (l.schedule != PipelineSchedule::Interleaved && l.schedule != PipelineSchedule::Dynamic)))
    return "virtual stages need the interleaved or dynamic schedule";
  if (l.schedule == PipelineSchedule::ZeroBubble) {  // what loom train runs it with
    if (l.pp == 1) return "the zero-bubble schedule needs PP > 1";
    if (l.recompute != RecomputeGranularity::kNone) return "the zero-bubble schedule runs without recompute";
    if (l.zero_stage >= 2) return "the zero-bubble schedule runs with ZeRO 0 or 1";
  }
  if (l.global_batch % (int64_t(l.micro_batch) * l.dp))
    return "micro-batch " + s(l.micro_batch) + " x DP " + s(l.dp) + " does not divide the global batch " + s(l.global_batch);
  if (l.vpp > 1 && l.num_micro_batches() % l.pp)
    return "the interleaved schedule needs the micro-batches (" + s(l.num_micro_batches()) + ") to be a multiple of PP";
  if (l.zero_stage < 0 || l.zero_stage > 3) return "ZeRO stage must be 0..3";
  return "";
}

StepPrediction predict_step(const ModelConfig& c0, const PlanLayout& l, const Hardware& hw) {
  const std::string why = layout_problem(c0, l);
  require(why.empty(), why);
  ModelConfig c = c0;
  c.padded_vocab_size = int(padded_vocab(c.vocab_size, l.vocab_divisible_by, l.tp));
  const int gpn = std::max(1, hw.gpus_per_node);
  Ctx x{c, l, hw, c.padded_vocab_size, device_link(hw, l.tp <= gpn), device_link(hw, l.tp * l.dp <= gpn),
        device_link(hw, l.world() <= gpn)};
  const int P = l.pp, V = l.vpp, M = l.num_micro_batches();
  const bool half = l.dtype == ComputeDType::kFp16 || l.dtype == ComputeDType::kBf16;

  const StageCost layer = layer_cost(x);
  const double p2p = P > 1 ? send_recv_time(double(c.seq_length) * l.micro_batch * c.hidden_size * l.activation_bytes /
                                                 (l.sequence_parallel ? l.tp : 1),
                                             x.pp_link)
                           : 0.0;
  std::vector<StageCost> stages(static_cast<size_t>(P));
  for (int r = 0; r < P; r++) {
    StageCost& s = stages[size_t(r)];
    add(s, layer, double(c.num_layers / P));
    if (r == 0) add(s, embedding_cost(x), 1.0);
    if (r == P - 1) add(s, head_cost(x), 1.0);
    // Each chunk receives and sends its activations forward and their gradients backward.
    if (P > 1) s.p2p = 2.0 * V * p2p;
  }
  int slow = 0;
  double sum = 0;
  for (int r = 0; r < P; r++) {
    sum += stages[size_t(r)].total();
    if (stages[size_t(r)].total() > stages[size_t(slow)].total()) slow = r;
  }
  const StageCost& S = stages[size_t(slow)];
  // 1F1B and GPipe: M micro-batches through the slowest stage plus the fill and drain of the others;
  // interleaving cuts the fill and drain by V (Narayanan et al. 2021). Zero-bubble (ZB-H1, Qi et al. 2023):
  // each other stage adds F + B - W instead of F + B + W, its deferred weight gradients filling the
  // cool-down (the dynamic schedule without stragglers: its 1F1B or interleaved order's).
  double fill = (sum - S.total()) / V;
  if (l.schedule == PipelineSchedule::ZeroBubble) {
    fill = 0;
    for (int r = 0; r < P; r++)
      if (r != slow) fill += std::max(0.0, stages[size_t(r)].total() - 2.0 * stages[size_t(r)].wgrad_gemm);
  }
  const double pipeline = M * S.total() + fill;

  // Data parallelism and ZeRO, on the most loaded stage.
  int64_t params = 0;
  for (int r = 0; r < P; r++) params = std::max(params, stage_param_count(c, l, r));
  const int D = l.dp;
  const double G = double(params) * l.grad_reduce_bytes, W = double(params) * (half ? 2.0 : 4.0);
  double dp_comm = 0, zero_gather = 0;
  if (D > 1) {
    if (l.zero_stage <= 1) {
      const double reduce = l.zero_stage == 0 ? all_reduce_time(G, D, x.dp_link) : reduce_scatter_time(G, D, x.dp_link);
      dp_comm = l.overlap_grad_reduce ? std::max(0.0, reduce - S.backward()) : reduce;
    } else {
      // ZeRO-2/3 reduce-scatter every micro-batch's gradients during its backward.
      const double rs = reduce_scatter_time(G, D, x.dp_link);
      dp_comm = M * (l.overlap_grad_reduce ? std::max(0.0, rs - S.backward()) : rs);
    }
    if (l.zero_stage == 1 || l.zero_stage == 2) zero_gather = all_gather_time(W, D, x.dp_link);  // updated weights
    if (l.zero_stage == 3) zero_gather = M * 2.0 * all_gather_time(W, D, x.dp_link);          // forward and backward
  }
  const double tied = P > 1 && c.tie_embeddings
                          ? all_reduce_time(double(c.padded_vocab_size) / l.tp * c.hidden_size * l.grad_reduce_bytes, 2, x.pp_link)
                          : 0.0;
  // Adam over this rank's share: fp32 gradient read, master weight, both moments read and written
  // (28 bytes a parameter), with half precision also the half gradient, the scaled copy and the weights.
  const double local = double(params) / (l.zero_stage >= 1 ? D : 1);
  const double adam_bytes = 28.0 + (half ? 6.0 : 0.0);
  double optimizer = 0, offload = 0;
  if (l.offload_optimizer) {
    optimizer = local * 28.0 / hw.host_memory_bandwidth;
    offload = local * (4.0 + (half ? 2.0 : 4.0)) / hw.host_bandwidth;  // gradients down, weights up
  } else {
    optimizer = x.memory(local * adam_bytes);
  }

  StepPrediction p;
  auto row = [&](const char* name, double t) { p.rows.push_back({name, t}); };
  row("forward GEMMs", M * S.fwd_gemm);
  row("forward attention", M * S.fwd_attention);
  row("forward memory-bound kernels", M * S.fwd_memory);
  row("backward GEMMs", M * S.bwd_gemm);
  row("backward attention", M * S.bwd_attention);
  row("backward memory-bound kernels", M * S.bwd_memory);
  row("recompute", M * S.recompute);
  row("tensor-parallel collectives", M * S.tp_comm);
  row("pipeline send/recv", M * S.p2p);
  row("pipeline bubble", pipeline - M * S.total());
  row("data-parallel gradient reduction", dp_comm);
  row("ZeRO parameter gathers", zero_gather);
  row("embedding gradient all-reduce", tied);
  row("optimizer step", optimizer);
  row("offload traffic", offload);
  for (const auto& r : p.rows) p.step_seconds += r.seconds;
  p.forward_seconds = S.forward();
  p.backward_seconds = S.backward();
  p.optimizer_seconds = optimizer + offload;
  p.layer_forward_seconds = layer.forward();
  p.embedding_forward_seconds = embedding_cost(x).forward();
  p.head_forward_seconds = head_cost(x).forward();
  p.model_flops = decoder_flops_per_iteration(c, l.global_batch);
  p.tflops_per_gpu = p.model_flops / p.step_seconds / l.world() / 1e12;
  p.tokens_per_s_per_gpu = double(l.global_batch) * c.seq_length / p.step_seconds / l.world();

  // Memory of the most loaded rank: model states (Megatron's most-loaded-shard count from
  // memory_report, at ZeRO's bytes per parameter), activations (activation_model.h) of rank 0 and of
  // the last rank, whichever is larger, and ZeRO-3's gathered weights of two layers (one prefetched).
  MemoryPlanConfig m;
  m.num_layers = c.num_layers, m.hidden_size = c.hidden_size, m.num_attention_heads = c.num_attention_heads;
  m.ffn_hidden_size = c.ffn_hidden_size, m.num_query_groups = c.query_groups(), m.kv_channels = c.head_dim();
  m.swiglu = c.gated_mlp(), m.untie_embeddings_and_output_weights = !c.tie_embeddings;
  m.seq_length = c.seq_length, m.padded_vocab_size = c.padded_vocab_size;
  m.tensor_parallel = l.tp, m.pipeline_parallel = l.pp, m.data_parallel = l.dp, m.micro_batch_size = l.micro_batch;
  const TheoreticalMemory tm = theoretical_memory(m);
  p.model_state_bytes = tm.most_loaded_shard * model_state_bytes_per_param(half, l.grad_reduce_bytes, l.zero_stage, l.dp, l.offload_optimizer);
  const int sched = l.schedule == PipelineSchedule::GPipe        ? 0
                    : l.schedule == PipelineSchedule::ZeroBubble ? 3
                    : V == 1                                     ? 1   // 1F1B, dynamic at its default cap
                                                                 : 2;  // interleaved, dynamic with V chunks
  StageActivationInput a;
  a.layer.seq_length = c.seq_length, a.layer.micro_batch = l.micro_batch, a.layer.hidden = c.hidden_size;
  a.layer.heads = c.num_attention_heads, a.layer.query_groups = c.query_groups(), a.layer.kv_channels = c.head_dim();
  a.layer.ffn_hidden = c.ffn_hidden_size, a.layer.gated_mlp = c.gated_mlp();
  a.layer.dropout = c.hidden_dropout > 0 || c.attention_dropout > 0;
  a.layer.element_bytes = l.activation_bytes, a.layer.tensor_parallel = l.tp;
  a.layer.sequence_parallel = l.sequence_parallel, a.layer.recompute = l.recompute;
  // Flash attention keeps no s x s scores (only the log-sum-exp): Korthikanti's 5 a s^2 b term is gone.
  if (hw.fused_attention && l.recompute == RecomputeGranularity::kNone) a.layer.recompute = RecomputeGranularity::kSelective;
  a.layers = c.num_layers / P;
  a.padded_vocab = c.padded_vocab_size;
  double act = 0;
  for (int r : {0, P - 1}) {
    a.first_stage = r == 0, a.last_stage = r == P - 1;
    a.in_flight = in_flight_stage_equivalents(sched, P, r, M, V);
    a.deferred_weight_grads = l.schedule == PipelineSchedule::ZeroBubble;
    act = std::max(act, predicted_activation_bytes(a));
  }
  p.activation_bytes = act;
  if (l.zero_stage == 3 && D > 1) p.working_bytes = 2.0 * double(transformer_layer_params(c, l.tp)) * (half ? 2.0 : 4.0);
  return p;
}

std::string layout_flags(const PlanLayout& l, int num_layers) {
  std::string f = "--tensor-model-parallel-size " + std::to_string(l.tp) + " --pipeline-model-parallel-size " +
                  std::to_string(l.pp);
  if (l.vpp > 1) f += " --num-layers-per-virtual-pipeline-stage " + std::to_string(num_layers / (l.pp * l.vpp));
  if (l.schedule == PipelineSchedule::GPipe) f += " --pipeline-schedule gpipe";
  if (l.schedule == PipelineSchedule::ZeroBubble) f += " --pipeline-schedule zero-bubble";
  if (l.schedule == PipelineSchedule::Dynamic) f += " --pipeline-schedule dynamic";
  f += " --micro-batch-size " + std::to_string(l.micro_batch) + " --global-batch-size " + std::to_string(l.global_batch);
  if (l.sequence_parallel) f += " --sequence-parallel";
  if (l.recompute == RecomputeGranularity::kSelective) f += " --recompute-granularity selective";
  if (l.recompute == RecomputeGranularity::kFull) f += " --recompute-granularity full";
  if (l.zero_stage > 0) f += " --zero-stage " + std::to_string(l.zero_stage);
  if (l.overlap_grad_reduce) f += " --overlap-grad-reduce";
  if (l.offload_optimizer) f += " --offload-optimizer cpu";
  if (l.dtype == ComputeDType::kFp16) f += " --fp16";
  if (l.dtype == ComputeDType::kBf16) f += " --bf16";
  return f;
}

CrossEntropyTraffic cross_entropy_traffic(const Hardware& hw, double logits, double e, bool vocab_shard) {
  const double b = logits * 4.0;  // the fp32 logits, once
  if (is_calibrated(hw)) return {(vocab_shard ? 5.0 : 2.0) * b, 0.0};
  return {9.0 * b + logits * e, 3.0 * b + logits * e};
}

Link device_link(const Hardware& hw, bool intra_node) {
  Link k;
  k.bandwidth = (intra_node ? hw.intra_node_bandwidth : hw.inter_node_bandwidth) * hw.link_efficiency;
  k.latency = intra_node ? hw.intra_node_latency : hw.inter_node_latency;
  k.all_gather_factor = hw.all_gather_factor, k.reduce_scatter_factor = hw.reduce_scatter_factor;
  return k;
}

}  // namespace loom
