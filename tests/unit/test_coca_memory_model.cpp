// The CoCa memory model (plan/coca_memory_model.h) term by term for reference log 000's layout: CoCa-B/16,
// 4 ranks, 512 images each, fp16 under autocast, ZeRO-1, gradient checkpointing; each expected value is
// written out from the shapes (N = 253,026,049 parameters, 197 image tokens of width 768, context 77 of
// width 512, 76 caption positions over 49,408 words, 256 pooler queries of width 512, 8 heads).
#include <gtest/gtest.h>

#include "loom/models/coca/coca_config.h"
#include "loom/plan/coca_memory_model.h"

namespace loom {
namespace {

CocaLayout log000_layout() {
  CocaLayout l;
  l.dp = 4, l.batch = 512, l.dtype = ComputeDType::kFp16, l.activation_bytes = 2, l.grad_checkpointing = true;
  l.zero_stage = 1, l.lamb = true;
  return l;
}

double pooler(double Q, double Lk, double Wk) { return Lk * Wk + 2 * Lk * 512 + Q * 512 + 8 * Q * Lk + 2 * Q * 512; }

TEST(CocaMemoryModel, Log000TermByTerm) {
  const CocaMemoryTerms m = predict_coca_memory(coca_b16_config(), log000_layout());
  const double N = 253026049, B = 512;
  EXPECT_DOUBLE_EQ(m.model_states, 2 * N + 12 * N / 4);
  EXPECT_DOUBLE_EQ(m.batch, 4 * B * 3 * 224 * 224 + 8 * B * 77);
  EXPECT_DOUBLE_EQ(m.held_outputs, 2 * B * 76 * 49408 + 2 * 2 * B * 512 + 8 * B * 76);
  EXPECT_DOUBLE_EQ(m.caption_loss, 12 * B * 76 * 49408);
  const double saved = 2 * B * 3 * 224 * 224                                // the images' half copy
                       + 2 * B * (12 * 197 * 768 + 12 * 77 * 512 + 24 * 76 * 512)  // block inputs
                       + 2 * B * (197 * 768 + 77 * 512 + 2 * 76 * 512)          // final norms, head input
                       + 2 * B * (pooler(256, 197, 768) + pooler(1, 256, 512) + 256 * 512)  // poolers, ln_post
                       + 2 * 4 * B * B * 4;                                     // contrastive logits
  EXPECT_DOUBLE_EQ(m.saved, saved);
  EXPECT_DOUBLE_EQ(m.gradients, 2 * N);
  // One EVA block, recomputed: Korthikanti's terms at 197 tokens, SwiGLU 2048, no dropout, no scores.
  const double sbh = B * 197 * 768;
  EXPECT_DOUBLE_EQ(m.recompute, 2 * 2 * sbh + (2 * sbh + 2 * B * 197 * 4 * 768) + (2 * sbh + 2 * B * 197 * 3 * 2048));
  EXPECT_DOUBLE_EQ(m.steady(), m.model_states + m.batch + m.held_outputs);
  // The caption loss's fp32 tensors make the start of the backward the peak.
  EXPECT_DOUBLE_EQ(m.peak(), m.start_of_backward());
  EXPECT_GT(m.start_of_backward(), m.end_of_backward());
}

TEST(CocaMemoryModel, WithoutCheckpointingEveryBlockKeepsItsActivations) {
  CocaLayout l = log000_layout();
  const CocaMemoryTerms ckpt = predict_coca_memory(coca_b16_config(), l);
  l.grad_checkpointing = false;
  const CocaMemoryTerms full = predict_coca_memory(coca_b16_config(), l);
  EXPECT_GT(full.saved, 3 * ckpt.saved);
  EXPECT_EQ(full.gradients, 0);
  EXPECT_EQ(full.recompute, 0);
  EXPECT_EQ(full.end_of_backward(), 0);
  EXPECT_DOUBLE_EQ(full.peak(), full.start_of_backward());
  EXPECT_DOUBLE_EQ(full.steady(), ckpt.steady());
}

TEST(CocaMemoryModel, Fp32AndZero) {
  CocaLayout l = log000_layout();
  l.activation_bytes = 4, l.dtype = ComputeDType::kFp32, l.zero_stage = 0;
  const double N = 253026049;
  const CocaMemoryTerms m = predict_coca_memory(coca_b16_config(), l);
  EXPECT_DOUBLE_EQ(m.model_states, 4 * N + 8 * N);  // no ZeRO: every rank keeps the moments
  EXPECT_DOUBLE_EQ(m.caption_loss, 12.0 * 512 * 76 * 49408);
  l.batch = 0;
  EXPECT_THROW(predict_coca_memory(coca_b16_config(), l), std::exception);
}

}  // namespace
}  // namespace loom
