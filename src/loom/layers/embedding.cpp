#include "loom/layers/embedding.h"

#include <cstring>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/dropout.h"
#include "loom/kernels/cpu/embedding.h"
#include "loom/layers/init.h"

namespace loom {

namespace {
constexpr uint64_t kEmbeddingDropoutStream = 0xE0;
}

EmbeddingLayer::EmbeddingLayer(const GptConfig& cfg, ParamStore& store, Workspace* ws)
    : cfg_(cfg), store_(store), ws_(ws) {
  word_ = store.add("embedding.word_embeddings.weight", {cfg.padded_vocab_size, cfg.hidden_size}, true);
  pos_ = store.add("embedding.position_embeddings.weight", {cfg.max_position_embeddings, cfg.hidden_size}, true);
}

void EmbeddingLayer::allocate(int, int, int) {}

void EmbeddingLayer::init_params(uint64_t seed) {
  init_normal(word(), seed, cfg_.init_method_std);
  init_normal(position(), seed, cfg_.init_method_std);
}

void EmbeddingLayer::forward(const StepContext& ctx, const Tensor&, Tensor& out) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), C = cfg_.hidden_size;
  cpu::embedding_forward(mb.tokens, mb.positions, word().value.f32(), position().value.f32(), out.f32(), N, C);
  float p = ctx.training ? cfg_.hidden_dropout : 0.f;
  if (p > 0) cpu::dropout_forward(out.f32(), long(N) * C, p, stream_key(ctx.rng_key, kEmbeddingDropoutStream));
}

void EmbeddingLayer::backward(const StepContext& ctx, const Tensor& dout, Tensor&) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), C = cfg_.hidden_size;
  const float* g = dout.f32();
  float p = cfg_.hidden_dropout;
  if (p > 0) {
    float* t = ws_->tmp.f32();
    std::memcpy(t, g, sizeof(float) * size_t(N) * C);
    cpu::dropout_backward(t, long(N) * C, p, stream_key(ctx.rng_key, kEmbeddingDropoutStream));
    g = t;
  }
  cpu::embedding_backward(g, mb.tokens, mb.positions, word().grad.f32(), position().grad.f32(), N, C);
}

}  // namespace loom
