#include "loom/models/gpt.h"

#include "loom/layers/embedding.h"
#include "loom/layers/transformer_block.h"

namespace loom {

namespace {
// Rows of logits materialised at once by the output layer: enough for an efficient GEMM, small enough
// to keep the logits a fraction of the full N x V (256 x 50304 floats = 51 MB).
constexpr int kLogitChunkRows = 256;
}  // namespace

GptModel::GptModel(const GptConfig& cfg, int batch, int seq, int slots) : cfg_(cfg) {
  auto embedding = std::make_unique<EmbeddingLayer>(cfg, store_, &ws_);
  const int word = store_.find("embedding.word_embeddings.weight") - &store_.all()[0];
  layers_.push_back(std::move(embedding));
  for (int i = 0; i < cfg.num_layers; i++) layers_.push_back(std::make_unique<TransformerBlock>(cfg, i, store_, &ws_));
  auto head = std::make_unique<LmHead>(cfg, store_, &ws_, word);
  head_ = head.get();
  layers_.push_back(std::move(head));
  store_.finalize();

  max_rows_ = batch * seq;
  const int64_t N = max_rows_, h = cfg.hidden_size;
  ws_.tmp = Tensor({N, h});
  ws_.dres = Tensor({N, h});
  ws_.dnorm = Tensor({N, h});
  ws_.dffn = Tensor({N, int64_t(cfg.ffn_hidden_size)});
  ws_.dqkv = Tensor({N, 3 * h});
  ws_.logit_chunk_rows = std::min<int>(kLogitChunkRows, max_rows_);
  ws_.logits = Tensor({int64_t(ws_.logit_chunk_rows), int64_t(cfg.padded_vocab_size)});
  grad_a_ = Tensor({N, h});
  grad_b_ = Tensor({N, h});
  hidden_.resize(slots);
  for (auto& boundaries : hidden_) {
    for (int i = 0; i <= cfg.num_layers; i++) boundaries.push_back(Tensor({N, h}));
  }
  for (auto& layer : layers_) layer->allocate(batch, seq, slots);
}

void GptModel::init(uint64_t seed) {
  for (auto& layer : layers_) layer->init_params(seed);
}

void GptModel::forward(const StepContext& ctx) {
  auto& h = hidden_[ctx.slot];
  const int N = ctx.mb->rows();
  Tensor unused;
  for (size_t i = 0; i < layers_.size(); i++) {
    Tensor in = i == 0 ? unused : h[i - 1].slice_rows(0, N);
    Tensor out = i + 1 < layers_.size() ? h[i].slice_rows(0, N) : unused;
    layers_[i]->forward(ctx, in, out);
  }
}

void GptModel::backward(const StepContext& ctx) {
  const int N = ctx.mb->rows();
  Tensor dout = grad_a_.slice_rows(0, N), din = grad_b_.slice_rows(0, N);
  for (size_t i = layers_.size(); i-- > 0;) {
    layers_[i]->backward(ctx, dout, din);
    std::swap(dout, din);
  }
}

void GptModel::logits(const std::vector<int>& rows, float* out) {
  head_->logits(hidden_[0][cfg_.num_layers], rows, out);
}

}  // namespace loom
