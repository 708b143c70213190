#include "loom/plan/activation_model.h"

#include <algorithm>

#include "loom/core/error.h"

namespace loom {

LayerActivationTerms layer_activation_terms(const ActivationShape& s) {
  require(s.seq_length > 0 && s.micro_batch > 0 && s.hidden > 0 && s.heads > 0 && s.tensor_parallel > 0,
          "activation model: sizes must be positive");
  const double sb = double(s.seq_length) * double(s.micro_batch), h = double(s.hidden);
  const double e = s.element_bytes, t = double(s.tensor_parallel);
  const double d = double(s.kv_channels > 0 ? s.kv_channels : s.hidden / s.heads);
  const double g = double(s.query_groups > 0 ? s.query_groups : s.heads);
  const double f = double(s.ffn_hidden > 0 ? s.ffn_hidden : 4 * s.hidden);
  const double q_width = double(s.heads) * d, kv_width = g * d;
  const double mask = s.dropout ? 1.0 : 0.0;
  // Tensors that exist whole on every tensor-parallel rank unless sequence parallelism splits them.
  const double replicated_div = s.sequence_parallel ? t : 1.0;
  LayerActivationTerms r;
  if (s.recompute == RecomputeGranularity::kFull) {
    // Only the layer's input survives the forward pass; everything else is recomputed.
    r.norms = e * sb * h / replicated_div;
    return r;
  }
  r.norms = 2.0 * e * sb * h / replicated_div;
  // QKV input and the dropout mask after the projection: replicated; Q, K, V and the projection input:
  // split over heads.
  r.attention = (e * sb * h + mask * sb * h) / replicated_div + e * sb * (q_width + 2.0 * kv_width + q_width) / t;
  // fc1 input and the MLP dropout mask: replicated; the activation's input (2f wide when gated) and fc2's
  // input: split.
  const double fc1_width = s.gated_mlp ? 2.0 * f : f;
  r.mlp = (e * sb * h + mask * sb * h) / replicated_div + e * sb * (fc1_width + f) / t;
  if (s.recompute == RecomputeGranularity::kNone) {
    const double scores = double(s.heads) * double(s.seq_length) * sb;  // a s^2 b
    r.scores = (e + mask + (s.dropout ? e : 0.0)) * scores / t;
  }
  return r;
}

double layer_activation_bytes(const ActivationShape& s) { return layer_activation_terms(s).total(); }

double predicted_activation_bytes(const StageActivationInput& in) {
  require(in.layers >= 0 && in.in_flight > 0, "activation model: layers and micro-batches in flight");
  const ActivationShape& s = in.layer;
  const double sb = double(s.seq_length) * double(s.micro_batch);
  const double t = double(s.tensor_parallel);
  double bytes = double(in.layers) * layer_activation_bytes(s) * in.in_flight;
  // The embedding's output dropout mask (Megatron's s b h p term), one per micro-batch in flight.
  if (in.first_stage && s.dropout)
    bytes += sb * double(s.hidden) / (s.sequence_parallel ? t : 1.0) * in.in_flight;
  // fp32 logits of the vocabulary shard and the cross-entropy's softmax (one micro-batch at a time).
  if (in.last_stage) bytes += 2.0 * 4.0 * sb * double(in.padded_vocab) / t;
  if (in.deferred_weight_grads) {
    const double g = s.query_groups > 0 ? double(s.query_groups) : double(s.heads);
    const double d = s.kv_channels > 0 ? double(s.kv_channels) : double(s.hidden) / double(s.heads);
    const double ffn = s.ffn_hidden > 0 ? double(s.ffn_hidden) : 4.0 * double(s.hidden);
    const double qkv = double(s.heads) * d + 2.0 * g * d, fc1 = (s.gated_mlp ? 2.0 : 1.0) * ffn;
    bytes += double(in.layers) * 4.0 * sb * (qkv / t + 2.0 * double(s.hidden) + fc1 / t) * in.in_flight;
    if (in.last_stage) bytes += 4.0 * sb * double(in.padded_vocab) / t * in.in_flight;
  }
  return bytes;
}

double in_flight_stage_equivalents(int schedule, int P, int rank, int M, int V) {
  require(P > 0 && rank >= 0 && rank < P && M > 0 && V > 0, "activation model: schedule sizes");
  if (schedule == 0) return double(M);
  if (schedule == 1) return double(std::min(P - rank, M));
  if (schedule == 3) return double(std::min(P, M));
  const int chunks = std::min(M * V, (P - rank - 1) * 2 + (V - 1) * P + 1);
  return double(chunks) / double(V);
}

}  // namespace loom
