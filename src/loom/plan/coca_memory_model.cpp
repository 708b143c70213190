#include "loom/plan/coca_memory_model.h"

#include <algorithm>

#include "loom/core/error.h"
#include "loom/plan/activation_model.h"

namespace loom {

namespace {

// open_clip's AttentionalPooler over Lk context rows of width Wk: ln_k's output (the MultiheadAttention's
// key and value input), K and V, the queries' projection, the softmax weights [heads, Q, Lk], the
// attention output and out_proj's input, per sample, in elements.
double pooler_elements(double Q, double Lk, double Wk, double E, double heads) {
  return Lk * Wk + 2.0 * Lk * E + Q * E + heads * Q * Lk + 2.0 * Q * E;
}

double block_bytes(int64_t seq, int64_t B, int64_t width, int64_t heads, int64_t ffn, bool gated, bool scores,
                   double e) {
  ActivationShape s;
  s.seq_length = seq, s.micro_batch = B, s.hidden = width, s.heads = heads, s.ffn_hidden = ffn;
  s.gated_mlp = gated, s.dropout = false, s.element_bytes = int(e);
  LayerActivationTerms t = layer_activation_terms(s);
  if (!scores) t.scores = 0;
  return t.total();
}

}  // namespace

double CocaMemoryTerms::end_of_backward() const {
  return recompute > 0 ? steady() + saved + gradients + recompute : 0.0;
}

double CocaMemoryTerms::peak() const { return std::max(start_of_backward(), end_of_backward()); }

CocaMemoryTerms predict_coca_memory(const CocaConfig& c, const CocaLayout& l) {
  require(l.batch >= 1, "the batch size per rank must be at least 1");
  require(l.dp >= 1, "the data-parallel size must be at least 1");
  const double e = l.activation_bytes, B = l.batch, n = double(coca_parameter_counts(c).total);
  const bool half = e < 4;
  const EvaVisionConfig& v = c.vision;
  const double S = v.image_size, Lv = v.tokens(), Wv = v.width, ctx = c.text.context_length, Wt = c.text.width;
  const double T = ctx - 1, Wd = c.decoder.width, V = c.decoder.vocab_size, E = c.embed_dim, Q = c.pooler.queries;

  CocaMemoryTerms m;
  m.model_states = e * n + (half ? 12.0 : 8.0) * n / (l.zero_stage >= 1 ? l.dp : 1);
  m.batch = 4.0 * B * 3.0 * S * S + 8.0 * B * ctx;
  m.held_outputs = e * B * T * V + 2.0 * e * B * E + 8.0 * B * T;

  double saved = half ? e * B * 3.0 * S * S : 0.0;  // autocast's half copy of the images for the patch embedding
  if (l.grad_checkpointing) {
    saved += e * B * (v.layers * Lv * Wv + c.text.layers * ctx * Wt + 2.0 * c.decoder.layers * T * Wd);
  } else {
    saved += v.layers * block_bytes(v.tokens(), l.batch, v.width, v.heads, v.mlp_hidden, true, false, e);
    saved += c.text.layers * block_bytes(c.text.context_length, l.batch, c.text.width, c.text.heads,
                                         c.text.mlp_hidden, false, true, e);
    // A decoder layer: its causal self-attention block, then a cross-attention block (its queries' terms at
    // the text length, no T x T scores; K and V over the image tokens and the T x Q softmax instead).
    const int64_t Tn = c.text.context_length - 1;
    const CocaDecoderConfig& d = c.decoder;
    saved += d.layers * (block_bytes(Tn, l.batch, d.width, d.heads, d.mlp_hidden, false, true, e) +
                         block_bytes(Tn, l.batch, d.width, d.heads, d.mlp_hidden, false, false, e) +
                         e * B * (2.0 * Q * Wd + d.heads * T * Q));
  }
  // The towers' final norms' inputs (vision: ln_k of the pooler reads the last block's output; text and
  // decoder: ln_final, and the decoder's vocabulary projection input).
  saved += e * B * (Lv * Wv + ctx * Wt + 2.0 * T * Wd);
  // The two poolers (256 queries over the image tokens, then 1 over those) and ln_post between them.
  saved += e * B * (pooler_elements(Q, Lv, Wv, E, c.pooler.heads) + pooler_elements(1, Q, E, E, c.pooler.heads) +
                    Q * E);
  // The contrastive logits of this rank's rows against the global batch, both directions, in fp32.
  saved += 2.0 * 4.0 * B * B * l.dp;
  m.saved = saved;
  m.caption_loss = 3.0 * 4.0 * B * T * V;
  if (l.grad_checkpointing) {
    m.gradients = e * n;
    m.recompute = block_bytes(v.tokens(), l.batch, v.width, v.heads, v.mlp_hidden, true, false, e);
  }
  return m;
}

}  // namespace loom
