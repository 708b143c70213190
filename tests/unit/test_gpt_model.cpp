// The GPT model as a whole: parameter counts against the reference logs, gradients against finite
// differences (with dropout on, which also checks that backward regenerates forward's masks), and a
// training step that allocates nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include "loom/core/allocator.h"
#include "loom/core/rng.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/train/trainer.h"

using namespace loom;

namespace {

ModelConfig tiny(float dropout) {
  ModelConfig c;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  c.ffn_hidden_size = 24;
  c.seq_length = 5;
  c.max_position_embeddings = 6;
  c.vocab_size = 30;
  c.padded_vocab_size = 32;
  c.hidden_dropout = dropout;
  c.attention_dropout = dropout;
  c.init_method_std = 0.3f;  // large enough that every path carries signal
  return c;
}

struct Fixture {
  ModelConfig cfg;
  DecoderModel model;
  BatchBuffer buffer;
  Fixture(float dropout, int batch) : cfg(tiny(dropout)), model(cfg, batch, cfg.seq_length), buffer(batch, cfg.seq_length) {
    model.init(7);
    // Give biases and norms non-trivial values so their gradients matter.
    Rng r(99);
    for (auto& p : model.params().all())
      if (p.shape.size() == 1)
        for (int64_t i = 0; i < p.numel(); i++) p.value.f32()[i] += 0.2f * r.normal();
    for (size_t i = 0; i < buffer.samples().size(); i++) buffer.samples()[i] = int32_t((i * 7 + 3) % cfg.vocab_size);
    buffer.build({});
    buffer.loss_mask()[3] = 0;  // a masked token
  }
  double loss(bool training, uint64_t key, bool backward) {
    double ls = 0, ms = 0;
    StepContext ctx;
    ctx.mb = &buffer.micro_batch();
    ctx.training = training;
    ctx.rng_key = key;
    ctx.loss_sum = &ls;
    ctx.mask_sum = &ms;
    model.forward(ctx);
    if (backward) model.backward(ctx);
    return ls / ms;
  }
};

}  // namespace

TEST(ModelConfig, ParameterCountsOfTheReferenceLogs) {
  ModelConfig c;
  c.num_layers = 4;
  c.hidden_size = 1024;
  c.num_attention_heads = 16;
  c.ffn_hidden_size = 4096;
  c.seq_length = c.max_position_embeddings = 1024;
  c.vocab_size = 50257;
  c.padded_vocab_size = int(padded_vocab(50257, 128, 1));
  EXPECT_EQ(c.padded_vocab_size, 50304);
  EXPECT_EQ(decoder_total_params(c), 102946816);  // reference log 001
  c.num_layers = 48;
  c.hidden_size = 1600;
  c.num_attention_heads = 25;
  c.ffn_hidden_size = 6400;
  EXPECT_EQ(decoder_total_params(c), 1557686400);  // reference log 002
  EXPECT_EQ(padded_vocab(50257, 128, 2), 50432);  // reference log 004 (TP 2): 175 dummy tokens
}

TEST(DecoderModel, StoreHoldsExactlyTheCountedParameters) {
  ModelConfig c = tiny(0);
  DecoderModel m(c, 1, c.seq_length);
  int64_t n = 0;
  for (auto& p : m.params().all()) n += p.numel();
  EXPECT_EQ(n, decoder_total_params(c));
  EXPECT_EQ(m.params().all().size(), size_t(2 + 12 * c.num_layers + 2));
}

TEST(DecoderModel, TensorParallelShardHoldsMegatronsPerRankCount) {
  ModelConfig c = tiny(0);
  c.num_attention_heads = 4;  // divisible by every T below
  for (int T : {2, 4}) {
    for (int rank = 0; rank < T; rank++) {
      DecoderModel m(c, 1, c.seq_length, 1, TensorParallel{nullptr, rank, T, false});  // no communication needed to build
      EXPECT_EQ(m.num_params_on_rank(), decoder_total_params(c, T));
      // Every shard is a slice of the full tensor of the one-process model.
      for (const auto& p : m.params().all()) EXPECT_EQ(shape_numel(p.global_shape()), p.numel() * (p.split.dim < 0 ? 1 : T)) << p.name;
    }
  }
}

TEST(DecoderModel, GradientsMatchFiniteDifferencesWithDropout) {
  for (float dropout : {0.0f, 0.2f}) {
    Fixture f(dropout, 2);
    const uint64_t key = 12345;
    f.model.params().zero_grads();
    f.loss(true, key, true);
    auto& params = f.model.params();
    // Snapshot: a training-mode forward already accumulates the output layer's weight gradient.
    const std::vector<float> grads(params.grads(), params.grads() + params.numel());
    Rng pick(5);
    int checked = 0;
    for (auto& p : params.all()) {
      for (int k = 0; k < 3; k++) {
        const int64_t i = int64_t(pick.next_u32() % uint32_t(p.numel()));
        float* w = p.value.f32() + i;
        const float saved = *w, h = 1e-2f;
        *w = saved + h;
        const double up = f.loss(true, key, false);
        *w = saved - h;
        const double down = f.loss(true, key, false);
        *w = saved;
        const double fd = (up - down) / (2 * h);
        const double g = grads[size_t(p.offset + i)];
        EXPECT_NEAR(g, fd, 2e-3 + 2e-2 * std::fabs(fd)) << p.name << "[" << i << "] dropout " << dropout;
        checked++;
      }
    }
    EXPECT_GT(checked, 80);
  }
}

TEST(DecoderModel, DropoutIsReproducibleAndOffInEvaluation) {
  Fixture f(0.3f, 2);
  const double a = f.loss(true, 1, false), b = f.loss(true, 1, false), c = f.loss(true, 2, false);
  EXPECT_EQ(a, b);  // same stream, same masks
  EXPECT_NE(a, c);  // another micro-batch, other masks
  const double e1 = f.loss(false, 1, false), e2 = f.loss(false, 2, false);
  EXPECT_EQ(e1, e2);  // evaluation ignores the stream
}

// Also with half-precision storage (per-layer conversion into the working buffers, gradients read
// through the optimizer's scratch), half-precision activations (stash) and bf16 GEMMs: nothing allocated
// in the step either.
TEST(Trainer, StepAllocatesNothingAndLossFalls) {
  for (auto [weights, grads] : {std::pair{DType::F32, DType::F32}, std::pair{DType::BF16, DType::F32},
                                std::pair{DType::F16, DType::F16}}) {
    SCOPED_TRACE(std::string(dtype_name(weights)) + " weights, " + dtype_name(grads) + " gradients");
    ModelConfig c = tiny(0.1f);
    c.activation_dtype = weights;  // as --bf16/--fp16 set it: half activations (and bf16 GEMMs)
    ParamStorage storage;
    storage.weights = weights;
    storage.grads = grads;
    DecoderModel model(c, 2, c.seq_length, 1, {}, {}, storage);
    model.init(1);
    AdamW opt(model.params(), {0.9, 0.95, 1e-8, 0.0});
    opt.reset_main_weights();
    LrSchedule ls;
    ls.max_lr = 1e-2;
    ls.style = "constant";
    LrScheduler sched(ls);
    Timers timers;
    TrainStepOptions so;
    so.micro_batch = 2;
    so.num_micro_batches = 2;
    so.seq = c.seq_length;
    Trainer trainer(model, opt, sched, so, timers);
    SampleSet data;
    data.size = 8;
    data.get = [&](int64_t idx, int32_t* out) {
      for (int t = 0; t <= c.seq_length; t++) out[t] = int32_t((idx + t) % 10);  // a learnable pattern
    };
    const double first = trainer.train_step(data, 0, 0).loss;
    const int64_t allocs = memory_stats().num_allocs;
    double last = first;
    for (int it = 1; it < 60; it++) last = trainer.train_step(data, it * 4, it).loss;
    EXPECT_EQ(memory_stats().num_allocs, allocs) << "the training step allocated tensors";
    EXPECT_LT(last, 0.5 * first);
    EXPECT_EQ(sched.num_steps(), 60 * 4);
  }
}

namespace {
// Bytes a model allocates beyond its parameters and gradients: its activations and scratch.
int64_t activation_bytes(const ModelConfig& c, int batch, int slots = 1) {
  const int64_t before = memory_stats().allocated;
  DecoderModel m(c, batch, c.seq_length, slots);
  return memory_stats().allocated - before - 2 * 4 * m.params().numel();
}

// Parameter gradients after one forward and backward of a fixed micro-batch.
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

// The GPT-2 124M block structure (12 layers, h 768) at seq 256 and a small vocabulary.
ModelConfig gpt2_blocks() {
  ModelConfig big;
  big.num_layers = 12;
  big.hidden_size = 768;
  big.num_attention_heads = 12;
  big.ffn_hidden_size = 3072;
  big.seq_length = big.max_position_embeddings = 256;
  big.vocab_size = big.padded_vocab_size = 512;
  return big;
}
}  // namespace

// Recompute changes memory, never values: with fp32 and with half-precision activations (whose rounding a
// recomputed forward must reproduce), and with dropout on.
TEST(Recompute, GradientsBitwiseIdenticalAndFullRecomputeSavesMemory) {
  for (DType act : {DType::F32, DType::BF16, DType::F16}) {
    ModelConfig base = tiny(0.1f);
    base.num_layers = 3;
    base.activation_dtype = act;
    std::vector<float> reference;
    for (std::string g : {"", "selective", "full"}) {
      ModelConfig c = base;
      c.recompute_granularity = g;
      const std::vector<float> grads = one_step_grads(c);
      if (g.empty())
        reference = grads;
      else
        EXPECT_EQ(0, std::memcmp(grads.data(), reference.data(), grads.size() * 4))
            << g << " recompute changed a gradient with " << dtype_name(act) << " activations";
    }
  }
  // Activations with full recompute are below a third of those without.
  ModelConfig big = gpt2_blocks();
  const int64_t plain = activation_bytes(big, 4);
  big.recompute_granularity = "full";
  const int64_t full = activation_bytes(big, 4);
  EXPECT_LT(full * 3, plain) << "full " << full << " bytes vs " << plain;
}

// Half-precision activations (--bf16/--fp16) are stored in 2 bytes: what each in-flight micro-batch keeps
// for the backward halves (only normalisation and attention statistics stay fp32, plus the output layer's
// few fp32 rows); gradients stay close to fp32 ones; and evaluation rounds exactly as training does.
TEST(HalfActivations, StoredInTwoBytesWithGradientsCloseToFp32) {
  ModelConfig big = gpt2_blocks();
  const int64_t f32_slot = activation_bytes(big, 2, 2) - activation_bytes(big, 2, 1);
  const int64_t f32_total = activation_bytes(big, 2, 1);
  for (DType act : {DType::BF16, DType::F16}) {
    big.activation_dtype = act;
    const int64_t half_slot = activation_bytes(big, 2, 2) - activation_bytes(big, 2, 1);
    const int64_t half_total = activation_bytes(big, 2, 1);
    const double ratio = double(half_slot) / double(f32_slot);
    std::printf("[ measured ] %s activations per micro-batch slot: %.2f MB vs fp32 %.2f MB (%.3fx); whole model "
                "with one slot %.2f MB vs %.2f MB\n",
                dtype_name(act), half_slot / 1048576.0, f32_slot / 1048576.0, ratio, half_total / 1048576.0,
                f32_total / 1048576.0);
    EXPECT_GT(ratio, 0.5);
    EXPECT_LT(ratio, 0.52);
  }

  ModelConfig c = tiny(0.f);
  double f32_loss = 0;
  const std::vector<float> ref = one_step_grads(c, &f32_loss);
  for (DType act : {DType::BF16, DType::F16}) {
    c.activation_dtype = act;
    double loss = 0;
    const std::vector<float> g = one_step_grads(c, &loss);
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size(); i++) num += double(g[i] - ref[i]) * (g[i] - ref[i]), den += double(ref[i]) * ref[i];
    const double rel = std::sqrt(num / den), tol = act == DType::BF16 ? 2e-2 : 3e-3;  // 8 vs 11 mantissa bits
    std::printf("[ measured ] %s activations (bf16: and GEMM operands): gradient relative difference to fp32 %.2e\n",
                dtype_name(act), rel);
    EXPECT_LT(rel, tol) << dtype_name(act);
    EXPECT_GT(rel, 0.0) << dtype_name(act) << ": activations were not rounded";
    EXPECT_NEAR(loss, f32_loss, 5e-3 * f32_loss) << dtype_name(act);
    // The evaluation forward (nothing stashed) sees the same rounded values as the training one.
    Fixture f(0.f, 2);
    ModelConfig fc = f.cfg;
    fc.activation_dtype = act;
    DecoderModel m(fc, 2, fc.seq_length);
    m.init(7);
    auto run = [&](bool training) {
      double ls = 0, ms = 0;
      StepContext ctx;
      ctx.mb = &f.buffer.micro_batch();
      ctx.training = training;
      ctx.rng_key = 1;
      ctx.loss_sum = &ls;
      ctx.mask_sum = &ms;
      m.forward(ctx);
      return ls / ms;
    };
    EXPECT_EQ(run(true), run(false)) << dtype_name(act);
  }
}
