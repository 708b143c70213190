// The activation memory model against the closed forms of Korthikanti et al. 2022 (section 4.1, Table 2),
// written out here independently of the term-by-term code, and the schedules' micro-batches in flight
// against Megatron's estimate.
#include <gtest/gtest.h>

#include "loom/core/error.h"
#include "loom/plan/activation_model.h"

namespace {

using loom::ActivationShape;
using loom::RecomputeGranularity;

ActivationShape paper(int64_t t, bool sp, RecomputeGranularity r) {
  ActivationShape s;
  s.seq_length = 2048, s.micro_batch = 4, s.hidden = 4096, s.heads = 32;
  s.tensor_parallel = t, s.sequence_parallel = sp, s.recompute = r;
  return s;
}

constexpr double s_ = 2048, b_ = 4, h_ = 4096, a_ = 32;

TEST(ActivationModel, PaperFormulas) {
  const double sbh = s_ * b_ * h_;
  EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(paper(1, false, RecomputeGranularity::kNone)), sbh * (34 + 5 * a_ * s_ / h_));
  for (double t : {2.0, 4.0, 8.0}) {
    const int64_t ti = int64_t(t);
    EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(paper(ti, false, RecomputeGranularity::kNone)),
                     sbh * (10 + 24 / t + 5 * a_ * s_ / (h_ * t)));
    EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(paper(ti, true, RecomputeGranularity::kNone)),
                     sbh / t * (34 + 5 * a_ * s_ / h_));
    EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(paper(ti, false, RecomputeGranularity::kSelective)), sbh * (10 + 24 / t));
    EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(paper(ti, true, RecomputeGranularity::kSelective)), sbh * 34 / t);
    EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(paper(ti, false, RecomputeGranularity::kFull)), 2 * sbh);
    EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(paper(ti, true, RecomputeGranularity::kFull)), 2 * sbh / t);
  }
}

TEST(ActivationModel, TermsOfThePaper) {
  // 11 s b h + 5 a s^2 b (attention), 19 s b h (MLP), 4 s b h (norms).
  const auto t = loom::layer_activation_terms(paper(1, false, RecomputeGranularity::kNone));
  const double sbh = s_ * b_ * h_;
  EXPECT_DOUBLE_EQ(t.attention, 11 * sbh);
  EXPECT_DOUBLE_EQ(t.scores, 5 * a_ * s_ * s_ * b_);
  EXPECT_DOUBLE_EQ(t.mlp, 19 * sbh);
  EXPECT_DOUBLE_EQ(t.norms, 4 * sbh);
}

TEST(ActivationModel, Generalisations) {
  const double sb = s_ * b_;
  // Megatron's SP + selective estimate for any FFN width: s b h (18 + 4 f / h) / t.
  ActivationShape s = paper(2, true, RecomputeGranularity::kSelective);
  s.ffn_hidden = 11008;
  EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(s), sb * h_ * (18 + 4 * 11008 / h_) / 2);
  // Grouped-query attention: K and V shrink from 2 s b h each to 2 s b g d each.
  ActivationShape g = paper(1, false, RecomputeGranularity::kSelective);
  g.query_groups = 8;
  EXPECT_DOUBLE_EQ(loom::layer_activation_terms(paper(1, false, RecomputeGranularity::kSelective)).attention -
                       loom::layer_activation_terms(g).attention,
                   2 * 2 * sb * (h_ - 8 * 128));
  // A gated MLP stores fc1's 2f-wide output: 2 s b f more.
  ActivationShape m = paper(1, false, RecomputeGranularity::kSelective);
  m.gated_mlp = true;
  EXPECT_DOUBLE_EQ(loom::layer_activation_terms(m).mlp - 19 * sb * h_, 2 * sb * 4 * h_);
  // fp32 activations, no dropout: every stored tensor 4 bytes, no masks.
  ActivationShape f = paper(1, false, RecomputeGranularity::kNone);
  f.element_bytes = 4, f.dropout = false;
  EXPECT_DOUBLE_EQ(loom::layer_activation_bytes(f), 4 * sb * h_ * 16 + 4 * a_ * s_ * s_ * b_);
}

TEST(ActivationModel, InFlightMicroBatches) {
  // 1F1B: P - rank warm-up forwards + 1, bounded by M; GPipe: all M.
  for (int r = 0; r < 4; r++) EXPECT_EQ(loom::in_flight_stage_equivalents(1, 4, r, 8, 1), 4 - r);
  EXPECT_EQ(loom::in_flight_stage_equivalents(1, 4, 0, 2, 1), 2);
  EXPECT_EQ(loom::in_flight_stage_equivalents(0, 4, 2, 8, 1), 8);
  // Interleaved, rank 0: Megatron's P (1 + (P - 1) / (P V)).
  for (int V : {2, 4})
    EXPECT_DOUBLE_EQ(loom::in_flight_stage_equivalents(2, 4, 0, 16, V), 4.0 * (1.0 + 3.0 / (4.0 * V)));
  // Reference log 004's last rank (P 4, V 4, rank 3): (V - 1) P + 1 = 13 chunk-micro-batches.
  EXPECT_DOUBLE_EQ(loom::in_flight_stage_equivalents(2, 4, 3, 8, 4), 13.0 / 4.0);
  EXPECT_THROW(loom::in_flight_stage_equivalents(1, 4, 4, 8, 1), loom::UserError);
  // Zero-bubble: P on every rank (each micro-batch holds its slot until its W), bounded by M.
  for (int r = 0; r < 4; r++) EXPECT_EQ(loom::in_flight_stage_equivalents(3, 4, r, 8, 1), 4);
  EXPECT_EQ(loom::in_flight_stage_equivalents(3, 4, 3, 2, 1), 2);
}

TEST(ActivationModel, Stage) {
  loom::StageActivationInput in;
  in.layer = paper(2, true, RecomputeGranularity::kSelective);
  in.layers = 6, in.in_flight = 3, in.padded_vocab = 50304;
  const double sbh = s_ * b_ * h_;
  in.first_stage = true, in.last_stage = false;
  EXPECT_DOUBLE_EQ(loom::predicted_activation_bytes(in), 6 * 3 * sbh * 34 / 2 + 3 * sbh / 2);
  in.first_stage = false, in.last_stage = true;
  EXPECT_DOUBLE_EQ(loom::predicted_activation_bytes(in), 6 * 3 * sbh * 34 / 2 + 8 * s_ * b_ * 50304 / 2);
  // Zero-bubble's deferred W keeps per micro-batch in flight the fp32 output gradients of QKV (3h wide
  // with as many groups as heads), the projection (h), fc1 (4h) and fc2 (h), every token row, split by
  // TP but QKV and fc1, and the last stage's fp32 logit gradients (v / t wide).
  const double plain = loom::predicted_activation_bytes(in);
  in.deferred_weight_grads = true;
  EXPECT_DOUBLE_EQ(loom::predicted_activation_bytes(in) - plain,
                   6 * 3 * 4 * s_ * b_ * (3 * h_ / 2 + 2 * h_ + 4 * h_ / 2) + 3 * 4 * s_ * b_ * 50304 / 2);
}

}  // namespace
