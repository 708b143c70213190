// The residual stream's options: --apply-residual-connection-post-layernorm (the residuals taken from the
// norms' outputs) and --fp32-residual-connection (the residual stream in fp32 under half-precision
// activations). Numerics against PyTorch are in parity.test_gpt_parity_post_ln and the layouts in
// dist.test_residual_layouts; here: what is stored, in which type, and that recompute changes nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "loom/core/allocator.h"
#include "loom/models/decoder_model.h"
#include "loom/train/batch.h"

using namespace loom;

namespace {

ModelConfig small(float dropout) {
  ModelConfig c;
  c.num_layers = 3;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  c.ffn_hidden_size = 24;
  c.seq_length = 5;
  c.max_position_embeddings = 6;
  c.vocab_size = 30;
  c.padded_vocab_size = 32;
  c.hidden_dropout = c.attention_dropout = dropout;
  c.init_method_std = 0.3f;
  return c;
}

int64_t activation_bytes(const ModelConfig& c, int batch, int slots) {
  const int64_t before = memory_stats().allocated;
  DecoderModel m(c, batch, c.seq_length, slots);
  return memory_stats().allocated - before - 2 * 4 * m.params().numel();
}

std::vector<float> one_step_grads(const ModelConfig& c, double* loss = nullptr) {
  DecoderModel model(c, 2, c.seq_length);
  model.init(3);
  BatchBuffer buf(2, c.seq_length);
  for (size_t i = 0; i < buf.samples().size(); i++) buf.samples()[i] = int32_t((i * 5 + 1) % c.vocab_size);
  buf.build({});
  double ls = 0, ms = 0;
  StepContext ctx;
  ctx.mb = &buf.micro_batch();
  ctx.rng_key = 77;
  ctx.loss_sum = &ls;
  ctx.mask_sum = &ms;
  model.params().zero_grads();
  model.forward(ctx);
  model.backward(ctx);
  if (loss) *loss = ls / ms;
  return std::vector<float>(model.params().grads(), model.params().grads() + model.params().numel());
}

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); i++) num += double(a[i] - b[i]) * (a[i] - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / den);
}

}  // namespace

// With --fp32-residual-connection each block keeps its input and its attention-half sum x1 in 4 bytes per
// micro-batch instead of 2: exactly 2 tensors x (batch x seq x hidden) x 2 more bytes per block and slot.
TEST(Fp32Residual, BlocksKeepTheResidualStreamInFourBytes) {
  ModelConfig c = small(0.f);
  c.hidden_size = 64;
  c.num_attention_heads = 4;
  c.ffn_hidden_size = 128;
  c.seq_length = c.max_position_embeddings = 16;
  const int batch = 2;
  for (DType act : {DType::BF16, DType::F16}) {
    c.activation_dtype = act;
    c.fp32_residual = false;
    const int64_t half_slot = activation_bytes(c, batch, 2) - activation_bytes(c, batch, 1);
    c.fp32_residual = true;
    EXPECT_EQ(c.residual_dtype(), DType::F32);
    const int64_t res32_slot = activation_bytes(c, batch, 2) - activation_bytes(c, batch, 1);
    const int64_t rows_x_h = int64_t(batch) * c.seq_length * c.hidden_size;
    EXPECT_EQ(res32_slot - half_slot, int64_t(c.num_layers) * 2 * rows_x_h * 2) << dtype_name(act);
  }
  c.activation_dtype = DType::F32;  // fp32 activations: nothing changes
  c.fp32_residual = false;
  const int64_t f32 = activation_bytes(c, batch, 2);
  c.fp32_residual = true;
  EXPECT_EQ(activation_bytes(c, batch, 2), f32);
}

// The residual stream is no longer rounded: the gradients change from plain half precision and stay close
// to fp32; recompute still changes nothing (the recomputed forward reproduces the same unrounded sums).
TEST(Fp32Residual, UnroundedStreamCloseToFp32AndRecomputeBitwiseIdentical) {
  ModelConfig c = small(0.1f);
  double f32_loss = 0;
  const std::vector<float> ref = one_step_grads(c, &f32_loss);
  for (DType act : {DType::BF16, DType::F16}) {
    c.activation_dtype = act;
    c.fp32_residual = false;
    const std::vector<float> half = one_step_grads(c);
    c.fp32_residual = true;
    double loss = 0;
    const std::vector<float> res32 = one_step_grads(c, &loss);
    EXPECT_NE(0, std::memcmp(half.data(), res32.data(), half.size() * 4)) << dtype_name(act);
    const double rel = relative_difference(res32, ref), rel_half = relative_difference(half, ref);
    std::printf("[ measured ] %s: gradient relative difference to fp32 %.2e with an fp32 residual stream, %.2e without\n",
                dtype_name(act), rel, rel_half);
    EXPECT_LT(rel, act == DType::BF16 ? 2e-2 : 3e-3) << dtype_name(act);
    EXPECT_NEAR(loss, f32_loss, 5e-3 * f32_loss) << dtype_name(act);
    for (std::string g : {"selective", "full"}) {
      ModelConfig r = c;
      r.recompute_granularity = g;
      const std::vector<float> grads = one_step_grads(r);
      EXPECT_EQ(0, std::memcmp(grads.data(), res32.data(), grads.size() * 4)) << g << " " << dtype_name(act);
    }
  }
}

// Post-norm residuals: a different function of the same weights (the parity test checks which), with
// recompute bitwise identical in fp32, bf16 and fp16 with dropout on, for GPT and Llama settings.
TEST(PostLayerNormResidual, DifferentModelAndRecomputeBitwiseIdentical) {
  for (bool llama : {false, true}) {
    ModelConfig base = small(0.1f);
    if (llama) {
      base.normalization = NormKind::RMSNorm;
      base.activation = ActivationKind::SwiGlu;
      base.position_embedding = PositionKind::Rope;
      base.add_bias_linear = base.add_qkv_bias = false;
      base.tie_embeddings = false;
    }
    for (DType act : {DType::F32, DType::BF16, DType::F16}) {
      ModelConfig c = base;
      c.activation_dtype = act;
      double pre_loss = 0, post_loss = 0;
      one_step_grads(c, &pre_loss);
      c.apply_residual_connection_post_layernorm = true;
      const std::vector<float> post = one_step_grads(c, &post_loss);
      EXPECT_GT(std::fabs(post_loss - pre_loss), 1e-3) << (llama ? "llama " : "gpt ") << dtype_name(act);
      for (std::string g : {"selective", "full"}) {
        ModelConfig r = c;
        r.recompute_granularity = g;
        const std::vector<float> grads = one_step_grads(r);
        EXPECT_EQ(0, std::memcmp(grads.data(), post.data(), grads.size() * 4))
            << g << " recompute changed a gradient (" << (llama ? "llama " : "gpt ") << dtype_name(act) << ")";
      }
    }
  }
}
