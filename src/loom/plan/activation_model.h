#pragma once
// Activation memory of a transformer decoder, after Korthikanti et al. 2022, "Reducing Activation
// Recomputation in Large Transformer Models" (section 4 and Table 2). Per layer and micro-batch, with
// 2-byte activations and 1-byte dropout masks, s sequence, b micro-batch, h hidden, a heads, t tensor-
// parallel size:
//   no parallelism, no recompute        s b h (34 + 5 a s / h)
//   tensor parallel                     s b h (10 + 24 / t + 5 a s / (h t))
//   tensor + sequence parallel          s b h / t (34 + 5 a s / h)
//   tensor parallel, selective recompute          s b h (10 + 24 / t)
//   tensor + sequence parallel, selective         s b h 34 / t
//   full recompute                       2 s b h (the layer's input; / t with sequence parallelism)
// The 34 is 11 (attention: QKV input 2, Q and K 4, V 2, projection input 2, dropout mask 1) + 19 (MLP:
// fc1 input 2, activation input 8, fc2 input 8, dropout mask 1) + 4 (two norm inputs); 5 a s / h is the
// softmax output (2), its dropout mask (1) and the dropped-out scores (2). The terms below keep that
// decomposition, so the same code covers an FFN other than 4h, grouped-query attention (K and V 2 s b g d
// each), gated MLPs (fc1 is 2f wide), activations wider than 2 bytes and no dropout; with the paper's
// model (ffn 4h, groups = heads, ungated, dropout, 2 bytes) every term is the paper's.
#include <cstdint>

#include "loom/plan/memory_report.h"  // RecomputeGranularity

namespace loom {

struct ActivationShape {
  int64_t seq_length = 0, micro_batch = 1, hidden = 0, heads = 0;
  int64_t query_groups = 0;  // 0: = heads
  int64_t kv_channels = 0;   // 0: hidden / heads
  int64_t ffn_hidden = 0;    // 0: 4 x hidden
  bool gated_mlp = false;    // SwiGLU: fc1 produces 2 x ffn
  bool dropout = true;       // dropout masks (1 byte per element) are stored
  int element_bytes = 2;     // stored activations (2: fp16/bf16, 4: fp32)
  int64_t tensor_parallel = 1;
  bool sequence_parallel = false;
  RecomputeGranularity recompute = RecomputeGranularity::kNone;
};

// The terms of one layer's stored activations for one micro-batch, in bytes, as this rank holds them.
struct LayerActivationTerms {
  double norms = 0;       // both norm inputs (replicated unless sequence parallel)
  double attention = 0;   // QKV input, Q/K/V, projection input, attention dropout mask (no s^2 term)
  double scores = 0;      // softmax output, its dropout mask, dropped-out scores: 5 a s^2 b (0 if recomputed)
  double mlp = 0;         // fc1 input, activation input, fc2 input, MLP dropout mask
  double total() const { return norms + attention + scores + mlp; }
};

LayerActivationTerms layer_activation_terms(const ActivationShape& s);
// layer_activation_terms(s).total(): the bytes one layer stores for one micro-batch.
double layer_activation_bytes(const ActivationShape& s);

// Activations of one pipeline rank at its peak: its layers' stored activations times the micro-batches
// in flight, plus the first stage's embedding output dropout mask and the last stage's logits (fp32,
// with the cross-entropy's copy: 4 s b v / t x 2) for one micro-batch.
struct StageActivationInput {
  ActivationShape layer;
  int64_t layers = 0;        // transformer layers on this rank (all of its virtual chunks)
  double in_flight = 1;      // micro-batches held at once, in whole-stage units (in_flight_stage_equivalents)
  bool first_stage = true, last_stage = true;
  int64_t padded_vocab = 0;  // for the logits (last stage)
  // Zero-bubble: every micro-batch in flight also keeps, until its deferred W, the fp32 gradients of the
  // linears' outputs (QKV, projection, fc1, fc2: every token row, 4 s b (qkv/t + 2 h + fc1/t) bytes a
  // layer) and on the last stage its logit gradients (4 s b v / t).
  bool deferred_weight_grads = false;
};
double predicted_activation_bytes(const StageActivationInput& in);

// Micro-batches the schedule keeps in flight on pipeline rank `rank` of P, with M micro-batches and V
// virtual chunks, in units of one micro-batch through all of the rank's layers (a chunk is 1/V of them):
// GPipe M; 1F1B min(P - rank, M) (warm-up forwards + 1); interleaved min(M V, (P - rank - 1) 2 +
// (V - 1) P + 1) / V, which for rank 0 is Megatron's P (1 + (P - 1) / (P V)); zero-bubble (ZB-H1)
// min(P, M) on every rank (a micro-batch holds its slot until its deferred W).
double in_flight_stage_equivalents(int schedule /*0 gpipe, 1 1f1b, 2 interleaved, 3 zero-bubble*/, int P, int rank,
                                   int M, int V);

}  // namespace loom
