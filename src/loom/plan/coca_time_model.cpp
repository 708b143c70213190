#include "loom/plan/coca_time_model.h"

#include <algorithm>
#include <cmath>

#include "loom/core/error.h"
#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/plan/collective_model.h"

namespace loom {
namespace {

// What one rank spends on its batch, by kind, and the forward FLOPs behind it.
struct Cost {
  double fwd_gemm = 0, fwd_attention = 0, fwd_memory = 0;
  double bwd_gemm = 0, bwd_attention = 0, bwd_memory = 0;
  double flops = 0;
  double forward() const { return fwd_gemm + fwd_attention + fwd_memory; }
  void add(const Cost& o) {
    fwd_gemm += o.fwd_gemm, fwd_attention += o.fwd_attention, fwd_memory += o.fwd_memory;
    bwd_gemm += o.bwd_gemm, bwd_attention += o.bwd_attention, bwd_memory += o.bwd_memory;
    flops += o.flops;
  }
};

// Adds the costs of the model's pieces into `cost` (set by the caller before each group of pieces).
struct Calc {
  const Hardware& hw;
  ComputeDType dtype;
  double e;  // bytes of a stored activation
  Cost* cost = nullptr;

  double gemm(int64_t m, int64_t n, int64_t k, GemmOp op) const {
    if (m <= 0 || n <= 0 || k <= 0) return 0.0;
    return 2.0 * double(m) * double(n) * double(k) / gemm_rate(hw, m, n, k, dtype, op);
  }
  double memory(double bytes) const { return bytes / (hw.memory_bandwidth * hw.memory_efficiency); }
  // A linear layer of `tokens` rows through an out x in weight: forward NT, input gradient NN, weight
  // gradient TN (layers/linear.cpp), `times` over.
  void linear(int64_t tokens, int64_t out, int64_t in, double times = 1.0) {
    cost->fwd_gemm += times * gemm(tokens, out, in, GemmOp::kNT);
    cost->bwd_gemm += times * (gemm(tokens, in, out, GemmOp::kNN) + gemm(out, in, tokens, GemmOp::kTN));
    cost->flops += times * 2.0 * double(tokens) * double(out) * double(in);
  }
  // Scaled dot-product attention of `bh` (batch x heads) pairs, tq queries over tk keys of head_dim d.
  void attention(double bh, int64_t tq, int64_t tk, int64_t d, bool causal) {
    const double scores = bh * double(tq) * double(tk);
    const double flops = 4.0 * scores * double(d) * (causal ? 0.5 : 1.0);
    cost->flops += flops;
    if (hw.fused_attention) {
      // At the rate measured for this length (cross attention: the geometric mean of queries and keys).
      const AttentionRates r = attention_rates(hw, dtype, std::sqrt(double(tq) * double(tk)), causal);
      const double f = flops / r.forward;
      cost->fwd_attention += f;
      cost->bwd_attention += hw.attention_table.empty() ? f * hw.attention_backward_ratio : flops / r.backward;
    } else {
      // Materialised scores (time_model.cpp's form): QK^T and PV as batched GEMMs, the softmax traffic.
      const double g = bh * (gemm(tq, tk, d, GemmOp::kNT) + gemm(tq, d, tk, GemmOp::kNN));
      cost->fwd_attention += g + memory(scores * (4.0 * e + 1.0));
      cost->bwd_attention += 2.0 * g + memory(scores * (5.0 * e + 1.0));
    }
  }
  // Element-wise kernels moving `bytes` forward; their backward moves about twice as much.
  void bytes(double b) { cost->fwd_memory += memory(b), cost->bwd_memory += 2.0 * memory(b); }
};

// EVA-02 block on N = B x tokens rows: norm1, q/k/v, 2D RoPE on q and k, attention, inner_attn_ln (sub-LN),
// proj, residual; norm2, w1 and w2, SwiGLU, ffn_ln, w3, residual.
void vision_block(Calc& x, const EvaVisionConfig& v, int64_t B) {
  const int64_t N = B * v.tokens(), w = v.width, f = v.mlp_hidden;
  const double Nw = double(N) * double(w), Nf = double(N) * double(f);
  x.linear(N, w, w, 3.0);
  x.linear(N, w, w);
  x.linear(N, f, w, 2.0);
  x.linear(N, w, f);
  x.attention(double(B) * v.heads, v.tokens(), v.tokens(), v.head_dim(), false);
  x.bytes(x.e * (2 * Nw /*norm1*/ + 4 * Nw /*rope q,k*/ + 2 * Nw /*sub-LN*/ + 3 * Nw /*residual*/ + 2 * Nw /*norm2*/ +
                 3 * Nf /*SwiGLU*/ + 2 * Nf /*ffn_ln*/ + 3 * Nw /*residual*/));
}

// CLIP residual block (the text tower's, the decoder's self-attention half) on N = B x T rows: ln_1,
// in_proj, attention, out_proj, residual; ln_2, c_fc, GELU, c_proj, residual.
void clip_block(Calc& x, int64_t B, int64_t T, int64_t w, int64_t f, int heads, bool causal) {
  const int64_t N = B * T;
  const double Nw = double(N) * double(w), Nf = double(N) * double(f);
  x.linear(N, 3 * w, w);
  x.linear(N, w, w);
  x.linear(N, f, w);
  x.linear(N, w, f);
  x.attention(double(B) * heads, T, T, w / heads, causal);
  x.bytes(x.e * (2 * Nw + 3 * Nw + 2 * Nw + 2 * Nf + 3 * Nw));
}

// The decoder's cross-attention block: text rows (B x T) attend over the image tokens (B x Q), each with
// its own LayerNorm (ln_1, ln_1_kv); then ln_2, the MLP and the residuals.
void cross_block(Calc& x, int64_t B, int64_t T, int64_t Q, int64_t w, int64_t f, int heads) {
  const int64_t Nt = B * T, Ni = B * Q;
  const double Ntw = double(Nt) * double(w), Niw = double(Ni) * double(w), Ntf = double(Nt) * double(f);
  x.linear(Nt, w, w);
  x.linear(Ni, 2 * w, w);
  x.linear(Nt, w, w);
  x.linear(Nt, f, w);
  x.linear(Nt, w, f);
  x.attention(double(B) * heads, T, Q, w / heads, false);
  x.bytes(x.e * (2 * Ntw + 2 * Niw + 3 * Ntw + 2 * Ntw + 2 * Ntf + 3 * Ntw));
}

// open_clip's AttentionalPooler: Q learned queries (width E) over a context of B x ctx rows of width cw.
void pooler(Calc& x, int64_t B, int64_t Q, int64_t ctx, int64_t cw, int64_t E, int heads) {
  x.linear(B * Q, E, E);
  x.linear(B * ctx, 2 * E, cw);
  x.linear(B * Q, E, E);
  x.attention(double(B) * heads, Q, ctx, E / heads, false);
  x.bytes(x.e * 2.0 * double(B) * double(ctx) * double(cw));  // ln_k over the context
}

struct Parts {
  Cost blocks;  // the towers' and decoder's blocks: what gradient checkpointing recomputes
  Cost rest;    // embeddings, poolers, projections, the caption head and the contrastive logits
};

Parts model_costs(const CocaConfig& c, const Calc& proto, int64_t B, int dp) {
  Parts p;
  Calc x = proto;
  const EvaVisionConfig& v = c.vision;
  const int64_t E = c.embed_dim, Q = c.pooler.queries, T = c.text.context_length, tw = c.text.width;
  const CocaDecoderConfig& d = c.decoder;
  x.cost = &p.blocks;
  for (int i = 0; i < v.layers; i++) vision_block(x, v, B);
  for (int i = 0; i < c.text.layers; i++) clip_block(x, B, T, tw, c.text.mlp_hidden, c.text.heads, true);
  for (int i = 0; i < d.layers; i++) {
    clip_block(x, B, T, d.width, d.mlp_hidden, d.heads, true);
    cross_block(x, B, T, Q, d.width, d.mlp_hidden, d.heads);
  }
  x.cost = &p.rest;
  // Vision: the patch embedding (a GEMM over 3 p^2 pixels per patch), CLS and position embedding; the
  // poolers, ln_post and visual.proj.
  x.linear(B * v.num_patches(), v.width, 3 * int64_t(v.patch_size) * v.patch_size);
  x.bytes(x.e * 3.0 * double(B) * v.tokens() * v.width);
  pooler(x, B, Q, v.tokens(), v.width, E, c.pooler.heads);
  x.bytes(x.e * 2.0 * double(B) * double(Q) * double(E));  // ln_post
  pooler(x, B, 1, Q, E, E, c.pooler.heads);
  x.linear(B, E, E);
  // Text: token + position embedding, ln_final, EOT pooling, text_projection.
  x.bytes(x.e * (3.0 + 2.0) * double(B) * double(T) * double(tw));
  x.linear(B, E, tw);
  // Decoder head: ln_final, the vocabulary projection in equal chunks of at most kLmHeadChunkRows rows
  // (multimodal_decoder.cpp), its cross-entropy's traffic as the decoder's time model counts it.
  const int64_t N = B * T, V = d.vocab_size;
  const int64_t chunks = (N + cpu::kLmHeadChunkRows - 1) / cpu::kLmHeadChunkRows, rows = (N + chunks - 1) / chunks;
  x.linear(rows, V, d.width, double(chunks));
  const CrossEntropyTraffic ce = cross_entropy_traffic(x.hw, double(N) * double(V), x.e, false);
  x.cost->fwd_memory += x.memory(2.0 * double(N) * d.width * x.e + ce.forward);
  x.cost->bwd_memory += x.memory(ce.backward + 2.0 * double(N) * d.width * x.e);
  // Contrastive loss over the gathered features: this rank's B rows against all B x dp, both directions.
  x.linear(B, B * dp, E, 2.0);
  return p;
}

}  // namespace

double coca_forward_flops_per_sample(const CocaConfig& c) {
  Hardware flat;
  flat.name = "count";
  flat.peak_fp32 = 1, flat.memory_bandwidth = 1, flat.gemm_table = {{1, 1, 1, ComputeDType::kFp32, 1.0}};
  Calc x{flat, ComputeDType::kFp32, 4.0};
  const Parts p = model_costs(c, x, 1, 1);
  return p.blocks.flops + p.rest.flops;
}

StepPrediction predict_coca_step(const CocaConfig& c, const CocaLayout& l, const Hardware& hw) {
  require(l.batch >= 1, "the batch size per rank must be at least 1");
  require(l.dp >= 1, "the data-parallel size must be at least 1");
  const bool half = l.dtype != ComputeDType::kFp32;
  const Calc proto{hw, l.dtype, double(l.activation_bytes)};
  const Parts parts = model_costs(c, proto, l.batch, l.dp);
  Cost all = parts.blocks;
  all.add(parts.rest);
  const double recompute = l.grad_checkpointing ? parts.blocks.forward() : 0.0;

  const int D = l.dp;
  const Link link = device_link(hw, D <= hw.gpus_per_node);
  // The contrastive loss gathers both towers' features forward and reduce-scatters their gradients.
  const double features = 2.0 * double(l.batch) * double(D) * double(c.embed_dim) * 4.0;
  const double exchange = all_gather_time(features, D, link) + reduce_scatter_time(features, D, link);
  const CocaParamCounts counts = coca_parameter_counts(c);
  const double params = double(counts.total), e = half ? 2.0 : 4.0;
  double reduction = 0, gather = 0;
  if (D > 1) {
    reduction = l.zero_stage == 0 ? all_reduce_time(params * e, D, link) : reduce_scatter_time(params * e, D, link);
    if (l.zero_stage >= 1) gather = all_gather_time(params * e, D, link);  // the updated half weights
  }
  // The optimizer over this rank's share: AdamW's 28 bytes a parameter (time_model.cpp), LAMB's trust
  // ratio reading the weights and the update once more (+12), half precision's gradient and weight copies.
  const double local = params / (l.zero_stage >= 1 ? D : 1);
  const double optimizer = proto.memory(local * ((l.lamb ? 40.0 : 28.0) + (half ? 6.0 : 0.0)));

  StepPrediction p;
  auto row = [&](const char* name, double t) { p.rows.push_back({name, t}); };
  row("forward GEMMs", all.fwd_gemm);
  row("forward attention", all.fwd_attention);
  row("forward memory-bound kernels", all.fwd_memory);
  row("backward GEMMs", all.bwd_gemm);
  row("backward attention", all.bwd_attention);
  row("backward memory-bound kernels", all.bwd_memory);
  row("recompute", recompute);
  row("contrastive feature exchange", exchange);
  row("data-parallel gradient reduction", reduction);
  row("ZeRO parameter gathers", gather);
  row("optimizer step", optimizer);
  for (const TimeRow& r : p.rows) p.step_seconds += r.seconds;
  p.forward_seconds = all.forward();
  p.backward_seconds = all.bwd_gemm + all.bwd_attention + all.bwd_memory + recompute;
  p.optimizer_seconds = optimizer;
  p.model_flops = 3.0 * all.flops * double(D);
  p.tflops_per_gpu = p.model_flops / double(D) / p.step_seconds / 1e12;
  p.tokens_per_s_per_gpu = double(l.batch) / p.step_seconds;
  p.model_state_bytes = params * model_state_bytes_per_param(half, half ? 2 : 4, l.zero_stage, D, false);
  return p;
}

}  // namespace loom
