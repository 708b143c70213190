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

EmbeddingLayer::EmbeddingLayer(const ModelConfig& cfg, ParamStore& store, Workspace* ws, TensorParallel tp)
    : cfg_(cfg), store_(store), ws_(ws), tp_(std::move(tp)) {
  const int64_t local_vocab = cfg.padded_vocab_size / tp_.size, h = cfg.hidden_size;
  vocab_start_ = int(tp_.rank * local_vocab);
  vocab_end_ = int(vocab_start_ + local_vocab);
  word_ = store.add("embedding.word_embeddings.weight", {local_vocab, h}, true,
                    ParamSplit{{cfg.padded_vocab_size, h}, 0, vocab_start_, false, {}});
  if (cfg.learned_positions())
    pos_ = store.add("embedding.position_embeddings.weight", {cfg.max_position_embeddings, h}, true);
}

void EmbeddingLayer::allocate(int, int, int) {}

void EmbeddingLayer::init_params(uint64_t seed) {
  // Megatron-Core's embeddings take init_method (xavier_uniform_ too with --init-method-xavier-uniform).
  init_weight(word(), seed, cfg_.init_method_std, cfg_.init_method_xavier_uniform);
  if (pos_ >= 0) init_weight(position(), seed, cfg_.init_method_std, cfg_.init_method_xavier_uniform);
}

void EmbeddingLayer::forward(const StepContext& ctx, const Tensor&, Tensor& out) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), C = cfg_.hidden_size, Nl = tp_.local_rows(N), r0 = tp_.first_row(N);
  if (!tp_.active()) {
    cpu::embedding_forward(mb.tokens, mb.positions, word().value.f32(), pos_ >= 0 ? position().value.f32() : nullptr,
                           out.f32(), N, C);
  } else {
    // Each rank contributes the rows of the tokens in its vocabulary range; the sum is the lookup.
    float* full = ws_->partial.f32();
    cpu::embedding_forward(mb.tokens, nullptr, word().value.f32(), nullptr, full, N, C, vocab_start_, vocab_end_);
    tp_.all_reduce(full, long(N) * C);
    if (pos_ >= 0)
      cpu::embedding_forward(mb.positions, nullptr, position().value.f32(), nullptr, full, N, C, 0,
                             cfg_.max_position_embeddings, /*accumulate=*/true);
    std::memcpy(out.f32(), full + size_t(r0) * C, sizeof(float) * size_t(Nl) * C);
  }
  const float p = ctx.training ? cfg_.hidden_dropout : 0.f;
  if (p > 0)
    cpu::dropout_forward(out.f32(), long(Nl) * C, p, stream_key(ctx.rng_key, kEmbeddingDropoutStream),
                         uint64_t(r0) * uint64_t(C));
}

void EmbeddingLayer::backward_input(const StepContext& ctx, const Tensor& dout, Tensor&) {
  const MicroBatch& mb = *ctx.mb;
  const int N = mb.rows(), C = cfg_.hidden_size, Nl = tp_.local_rows(N), r0 = tp_.first_row(N);
  const float* g = dout.f32();
  const float p = cfg_.hidden_dropout;
  if (p > 0) {
    float* t = ws_->tmp.f32();
    std::memcpy(t, g, sizeof(float) * size_t(Nl) * C);
    cpu::dropout_backward(t, long(Nl) * C, p, stream_key(ctx.rng_key, kEmbeddingDropoutStream),
                          uint64_t(r0) * uint64_t(C));
    g = t;
  }
  if (Nl != N) {  // sequence parallel: every rank needs the gradient of every token row
    tp_.all_gather_rows(g, ws_->partial.f32(), Nl, C);
    g = ws_->partial.f32();
  }
  cpu::embedding_backward(g, mb.tokens, mb.positions, word().grad.f32(), pos_ >= 0 ? position().grad.f32() : nullptr,
                          N, C, vocab_start_, vocab_end_);
}

}  // namespace loom
