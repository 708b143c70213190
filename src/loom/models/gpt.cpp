#include "loom/models/gpt.h"

#include <cstring>

#include "loom/core/error.h"
#include "loom/kernels/cpu/adamw.h"
#include "loom/layers/embedding.h"
#include "loom/layers/transformer_block.h"

namespace loom {

namespace {
// Rows of logits materialised at once by the output layer: enough for an efficient GEMM, small enough
// to keep the logits a fraction of the full N x V (256 x 50304 floats = 51 MB).
constexpr int kLogitChunkRows = 256;
}  // namespace

GptModel::GptModel(const GptConfig& cfg, int batch, int seq, int slots, TensorParallel tp)
    : cfg_(cfg), tp_(std::move(tp)) {
  const int T = tp_.size;
  if (cfg.num_attention_heads % T) fail("--num-attention-heads must be divisible by --tensor-model-parallel-size");
  if (cfg.ffn_hidden_size % T) fail("--ffn-hidden-size must be divisible by --tensor-model-parallel-size");
  if (cfg.padded_vocab_size % T) fail("the padded vocabulary must be divisible by --tensor-model-parallel-size");
  if (tp_.sequence_parallel && T > 1 && (int64_t(batch) * seq) % T)
    fail("--sequence-parallel needs --seq-length divisible by --tensor-model-parallel-size");

  auto add_layer = [&](std::unique_ptr<Layer> layer, int first_param) {
    layer_params_.push_back({first_param, int(store_.all().size())});
    layers_.push_back(std::move(layer));
  };
  auto embedding = std::make_unique<EmbeddingLayer>(cfg, store_, &ws_, tp_);
  const int word = int(store_.find("embedding.word_embeddings.weight") - &store_.all()[0]);
  const int vocab_start = embedding->vocab_start();
  add_layer(std::move(embedding), 0);
  for (int i = 0; i < cfg.num_layers; i++) {
    const int first = int(store_.all().size());
    add_layer(std::make_unique<TransformerBlock>(cfg, i, store_, &ws_, tp_), first);
  }
  const int first = int(store_.all().size());
  auto head = std::make_unique<LmHead>(cfg, store_, &ws_, tp_, word, vocab_start);
  head_ = head.get();
  add_layer(std::move(head), first);
  store_.finalize();

  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg.hidden_size;
  ws_.partial = Tensor({N, h});
  ws_.tmp = Tensor({Nl, h});
  ws_.dres = Tensor({Nl, h});
  ws_.dnorm = Tensor({N, h});
  ws_.dffn = Tensor({N, int64_t(cfg.ffn_hidden_size / T)});
  ws_.dqkv = Tensor({N, 3 * h / T});
  ws_.logit_chunk_rows = int(std::min<int64_t>(kLogitChunkRows, N));
  ws_.logits = Tensor({int64_t(ws_.logit_chunk_rows), int64_t(cfg.padded_vocab_size / T)});
  grad_a_ = Tensor({Nl, h});
  grad_b_ = Tensor({Nl, h});
  hidden_.resize(slots);
  for (auto& boundaries : hidden_)
    for (int i = 0; i <= cfg.num_layers; i++) boundaries.push_back(Tensor({Nl, h}));
  for (auto& layer : layers_) layer->allocate(batch, seq, slots);
  int64_t partial = 0;
  for (const auto& p : store_.all())
    if (p.split.tp_partial_grad) partial += p.numel();
  if (partial) partial_grads_ = Tensor({partial});
}

void GptModel::init(uint64_t seed) {
  for (auto& layer : layers_) layer->init_params(seed);
}

void GptModel::forward(const StepContext& ctx) {
  auto& h = hidden_[ctx.slot];
  const int Nl = tp_.local_rows(ctx.mb->rows());
  Tensor unused;
  for (size_t i = 0; i < layers_.size(); i++) {
    Tensor in = i == 0 ? unused : h[i - 1].slice_rows(0, Nl);
    Tensor out = i + 1 < layers_.size() ? h[i].slice_rows(0, Nl) : unused;
    layers_[i]->forward(ctx, in, out);
  }
}

void GptModel::backward(const StepContext& ctx, const std::function<void(int)>& after_layer) {
  const int Nl = tp_.local_rows(ctx.mb->rows());
  Tensor dout = grad_a_.slice_rows(0, Nl), din = grad_b_.slice_rows(0, Nl);
  for (size_t i = layers_.size(); i-- > 0;) {
    layers_[i]->backward(ctx, dout, din);
    if (after_layer) after_layer(int(i));
    std::swap(dout, din);
  }
}

void GptModel::logits(const std::vector<int>& rows, float* out) {
  if (tp_.active()) throw std::logic_error("generation runs on one process");
  head_->logits(hidden_[0][cfg_.num_layers], rows, out);
}

double GptModel::local_grad_sum_squares() const {
  double s = 0;
  for (const auto& p : store_.all())
    if (!p.tp_replicated() || tp_.rank == 0) s += cpu::sum_squares(p.grad.f32(), long(p.numel()));
  return s;
}

void GptModel::reduce_partial_replica_grads() {
  if (!partial_grads_.defined() || !tp_.active()) return;
  float* buf = partial_grads_.f32();
  int64_t at = 0;
  for (const auto& p : store_.all())
    if (p.split.tp_partial_grad) {
      std::memcpy(buf + at, p.grad.f32(), sizeof(float) * size_t(p.numel()));
      at += p.numel();
    }
  tp_.all_reduce(buf, long(at));
  at = 0;
  for (auto& p : store_.all())
    if (p.split.tp_partial_grad) {
      std::memcpy(p.grad.f32(), buf + at, sizeof(float) * size_t(p.numel()));
      at += p.numel();
    }
}

int64_t GptModel::num_params_on_rank() const {
  int64_t n = 0;
  for (const auto& p : store_.all()) n += p.numel();
  return n;
}

}  // namespace loom
