// The backward split into its input half (B) and weight half (W), as zero-bubble pipelines run it: a
// model built with deferred weight gradients, running every micro-batch's B first and the W passes
// later (in micro-batch order), gives bitwise the parameter gradients, stage input gradients and losses
// of the ordinary backward run micro-batch by micro-batch, for every kind of layer: embedding, GPT and
// Llama blocks (LayerNorm/RMSNorm, GELU/SwiGLU, biases or none, learned positions or RoPE, GQA), the
// output layer tied (a last stage's copy of the word embedding) or untied, post-LN residuals, SwiGLU with
// linear biases, with dropout on.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/models/decoder_model.h"
#include "loom/train/batch.h"

using namespace loom;

namespace {

enum class Arch { Gpt, Llama, GptPostLn, LlamaBiases };

ModelConfig config(Arch arch) {
  const bool llama = arch == Arch::Llama || arch == Arch::LlamaBiases;
  ModelConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.ffn_hidden_size = 48;
  c.seq_length = 8;
  c.max_position_embeddings = 8;
  c.vocab_size = 60;
  c.padded_vocab_size = 64;
  c.hidden_dropout = c.attention_dropout = 0.1f;
  c.init_method_std = 0.2f;
  if (llama) {
    c.num_query_groups = 2;
    c.normalization = NormKind::RMSNorm;
    c.activation = ActivationKind::SwiGlu;
    c.position_embedding = PositionKind::Rope;
    c.add_bias_linear = c.add_qkv_bias = false;
    c.tie_embeddings = false;
  }
  if (arch == Arch::LlamaBiases) c.add_bias_linear = c.add_qkv_bias = true;  // SwiGLU with linear biases
  if (arch == Arch::GptPostLn) c.apply_residual_connection_post_layernorm = true;
  return c;
}

constexpr int kMicro = 3, kBatch = 2;

struct Run {
  std::vector<std::vector<float>> grads;        // per parameter
  std::vector<std::vector<float>> input_grads;  // per micro-batch (stages without the embedding)
  std::vector<double> losses;
};

// Runs kMicro micro-batches through one stage: deferred, all forwards, all B, then all W; otherwise each
// micro-batch's forward and ordinary backward in turn.
// precision: F32, or BF16 / F16 as --bf16 / --fp16 build the model (half weights and activations; --fp16 also
// half gradients).
Run run(Arch arch, StageSpec spec, bool deferred, DType precision = DType::F32) {
  ModelConfig cfg = config(arch);
  cfg.activation_dtype = precision;
  spec.defer_weight_grads = deferred;
  ParamStorage storage;
  storage.weights = precision;
  if (precision == DType::F16) storage.grads = DType::F16;
  DecoderModel model(cfg, kBatch, cfg.seq_length, kMicro, {}, spec, storage);
  model.init(11);
  Rng r(5);
  for (auto& p : model.params().all())  // non-trivial norms and biases (fp32 weights; half ones keep the init)
    if (p.shape.size() == 1 && p.value.dtype() == DType::F32)
      for (int64_t i = 0; i < p.numel(); i++) p.value.f32()[i] += 0.2f * r.normal();
  const int64_t rows = int64_t(kBatch) * cfg.seq_length, h = cfg.hidden_size;
  std::vector<BatchBuffer> buffers;
  std::vector<StepContext> ctx(kMicro);
  std::vector<double> loss(kMicro, 0), mask(kMicro, 0);
  std::vector<Tensor> out_grads;
  for (int m = 0; m < kMicro; m++) {
    buffers.emplace_back(kBatch, cfg.seq_length);
    for (size_t i = 0; i < buffers[m].samples().size(); i++)
      buffers[m].samples()[i] = int32_t((i * 7 + 3 + 13 * m) % cfg.vocab_size);
    buffers[m].build({});
    out_grads.push_back(Tensor({rows, h}));
    for (int64_t i = 0; i < rows * h; i++) out_grads[m].f32()[i] = 0.1f * r.normal();
  }
  for (int m = 0; m < kMicro; m++) {
    ctx[m].mb = &buffers[m].micro_batch();
    ctx[m].slot = m;
    ctx[m].rng_key = 1000 + m;
    ctx[m].loss_grad_scale = 1.f / kMicro;
    ctx[m].loss_sum = &loss[m];
    ctx[m].mask_sum = &mask[m];
  }
  auto fill_input = [&](int m) {
    if (spec.embedding) return;
    Rng in(77 + m);
    float* x = model.stage_input(m).f32();
    for (int64_t i = 0; i < rows * h; i++) x[i] = in.normal();
  };
  Run out;
  auto keep_input_grad = [&] {
    if (spec.embedding) return;
    const Tensor& g = model.stage_input_grad();
    out.input_grads.emplace_back(g.f32(), g.f32() + g.numel());
  };
  const Tensor* no_grad = nullptr;
  if (deferred) {
    for (int m = 0; m < kMicro; m++) fill_input(m), model.forward(ctx[m]);
    for (int m = 0; m < kMicro; m++) {
      model.backward_input(ctx[m], spec.head ? no_grad : &out_grads[m]);
      keep_input_grad();
    }
    for (int m = 0; m < kMicro; m++) model.backward_weight(ctx[m]);
  } else {
    for (int m = 0; m < kMicro; m++) {
      fill_input(m);
      model.forward(ctx[m]);
      model.backward(ctx[m], {}, spec.head ? no_grad : &out_grads[m]);
      keep_input_grad();
    }
  }
  // The stored gradients, widened to fp32 (exact) whatever their type.
  const ParamStore& store = model.params();
  for (const Segment& seg : store.grad_segments()) {
    std::vector<float> g(size_t(seg.count));
    cpu::to_f32(store.grad_data(seg), store.storage().grads, g.data(), long(seg.count));
    out.grads.push_back(std::move(g));
  }
  out.losses = loss;
  return out;
}

void expect_same(Arch arch, const StageSpec& spec, const std::string& what, DType precision = DType::F32) {
  const Run a = run(arch, spec, false, precision), b = run(arch, spec, true, precision);
  ASSERT_EQ(a.grads.size(), b.grads.size());
  int nonzero = 0;
  for (size_t i = 0; i < a.grads.size(); i++) {
    ASSERT_EQ(a.grads[i].size(), b.grads[i].size());
    EXPECT_EQ(std::memcmp(a.grads[i].data(), b.grads[i].data(), sizeof(float) * a.grads[i].size()), 0)
        << what << ": gradient of parameter " << i << " differs";
    for (float g : a.grads[i]) nonzero += g != 0;
  }
  EXPECT_GT(nonzero, 100) << what;
  ASSERT_EQ(a.input_grads.size(), b.input_grads.size());
  for (size_t m = 0; m < a.input_grads.size(); m++)
    EXPECT_EQ(std::memcmp(a.input_grads[m].data(), b.input_grads[m].data(), sizeof(float) * a.input_grads[m].size()), 0)
        << what << ": input gradient of micro-batch " << m << " differs";
  for (int m = 0; m < kMicro; m++) EXPECT_EQ(a.losses[m], b.losses[m]) << what;
}

}  // namespace

TEST(BackwardSplit, DeferredWeightPassesEqualTheFusedBackwardBitwise) {
  const std::pair<Arch, std::string> archs[] = {
      {Arch::Gpt, "gpt"}, {Arch::Llama, "llama"}, {Arch::GptPostLn, "gpt post-ln"}, {Arch::LlamaBiases, "llama biases"}};
  for (const auto& [arch, name] : archs) {
    // A whole tied model's word embedding takes the lookup's gradient in B and the output layer's in W, so
    // deferring W reorders their sum; pipelines never hold both on one stage (the last stage's copy is
    // summed with the first stage's after the schedule). An untied whole model splits cleanly.
    if (!config(arch).tie_embeddings) expect_same(arch, StageSpec{}, name + " whole model");
    expect_same(arch, StageSpec{0, 1, true, false}, name + " first stage (embedding, block 0)");
    expect_same(arch, StageSpec{0, 2, false, false}, name + " middle stage (blocks only)");
    expect_same(arch, StageSpec{1, 1, false, true}, name + " last stage (block 1, output layer)");
  }
}

// --bf16 and --fp16: half weights and activations (the deferred output gradients kept in the activation
// stash), bf16 GEMMs, fp16 gradients; the output layer keeps its logit gradients narrowed to bf16 for W.
TEST(BackwardSplit, DeferredWeightPassesEqualTheFusedBackwardInHalfPrecision) {
  const std::pair<Arch, std::string> archs[] = {{Arch::Gpt, "gpt"}, {Arch::Llama, "llama"}};
  for (DType precision : {DType::BF16, DType::F16})
    for (const auto& [arch, name] : archs) {
      const std::string what = name + (precision == DType::BF16 ? " bf16" : " fp16");
      expect_same(arch, StageSpec{0, 1, true, false}, what + " first stage", precision);
      expect_same(arch, StageSpec{0, 2, false, false}, what + " middle stage", precision);
      expect_same(arch, StageSpec{1, 1, false, true}, what + " last stage", precision);
    }
}

TEST(BackwardSplit, OutputLayerWeightGradientFromKeptLogitGradients) {
  // The fused cross-entropy's dW against the kept logit gradients replayed by lm_head_weight_grad, with
  // a last chunk smaller than the others.
  const int N = 11, V = 37, C = 9, chunk = 4;
  Rng r(3);
  std::vector<float> x(size_t(N) * C), W(size_t(V) * C), scale(N, 0.25f), loss(N), dx1(size_t(N) * C), dx2(dx1.size());
  std::vector<float> dW1(size_t(V) * C, 0.5f), dW2(dW1), logits(size_t(chunk) * V), kept(size_t(N) * V);
  std::vector<int32_t> labels(N);
  for (auto& v : x) v = r.normal();
  for (auto& v : W) v = r.normal();
  for (int i = 0; i < N; i++) labels[i] = i == 5 ? -1 : (i * 5) % V;
  cpu::lm_head_cross_entropy(x.data(), W.data(), labels.data(), scale.data(), loss.data(), dx1.data(), dW1.data(), N,
                             V, C, {logits.data(), chunk});
  cpu::LmHeadScratch keep{logits.data(), chunk};
  keep.keep = kept.data();
  cpu::lm_head_cross_entropy(x.data(), W.data(), labels.data(), scale.data(), loss.data(), dx2.data(), nullptr, N, V,
                             C, keep);
  EXPECT_EQ(std::memcmp(dx1.data(), dx2.data(), sizeof(float) * dx1.size()), 0);
  EXPECT_NE(std::memcmp(dW1.data(), dW2.data(), sizeof(float) * dW1.size()), 0);  // not yet formed
  cpu::lm_head_weight_grad(x.data(), kept.data(), dW2.data(), N, V, C, chunk);
  EXPECT_EQ(std::memcmp(dW1.data(), dW2.data(), sizeof(float) * dW1.size()), 0);
}
