#include "loom/models/decoder_model.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "loom/core/allocator.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/adamw.h"
#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/layers/embedding.h"
#include "loom/layers/init.h"
#include "loom/layers/transformer_block.h"
#include "loom/parallel/reduce_in_fp32.h"

namespace loom {

namespace {
constexpr int kLogitChunkRows = cpu::kLmHeadChunkRows;  // cross_entropy.h says why 512
}  // namespace

std::vector<StageSpec> decoder_pipeline_chunks(int L, int P, int V, int rank, int first, int last) {
  if (P < 1 || V < 1 || rank < 0 || rank >= P) throw std::logic_error("bad pipeline layout");
  std::vector<StageSpec> chunks;
  if (V > 1) {
    if (first || last) fail("--decoder-first/last-pipeline-num-layers cannot be combined with virtual pipeline stages");
    if (L % (P * V))
      fail("--num-layers (" + std::to_string(L) + ") must be divisible by pipeline x virtual pipeline size (" +
           std::to_string(P * V) + ")");
    const int per = L / (P * V);
    for (int c = 0; c < V; c++)
      chunks.push_back({(c * P + rank) * per, per, rank == 0 && c == 0, rank == P - 1 && c == V - 1});
    return chunks;
  }
  std::vector<int> counts(size_t(P), 0);
  if (!first && !last) {
    if (L % P)
      fail("--num-layers (" + std::to_string(L) + ") is not divisible by --pipeline-model-parallel-size (" +
           std::to_string(P) + "); give --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers");
    for (auto& n : counts) n = L / P;
  } else {
    if (P == 1) fail("--decoder-first/last-pipeline-num-layers need --pipeline-model-parallel-size > 1");
    const int f = first ? first : -1, l = last ? last : -1;
    int rest = L - std::max(f, 0) - std::max(l, 0), middle = P - 2 + (f < 0) + (l < 0);
    if (rest < 0 || (middle == 0 && rest != 0) || (middle > 0 && rest % middle))
      fail("the " + std::to_string(L) + " layers do not split into the given first/last stage counts and " +
           "equal middle stages");
    for (int i = 0; i < P; i++) counts[size_t(i)] = middle ? rest / middle : 0;
    if (f >= 0) counts[0] = f;
    if (l >= 0) counts[size_t(P - 1)] = l;
  }
  int start = 0;
  for (int i = 0; i < rank; i++) start += counts[size_t(i)];
  chunks.push_back({start, counts[size_t(rank)], rank == 0, rank == P - 1});
  return chunks;
}

DecoderModel::DecoderModel(const ModelConfig& cfg, int batch, int seq, int slots, TensorParallel tp, StageSpec stage,
                   ParamStorage storage)
    : cfg_(cfg), tp_(std::move(tp)), stage_(stage) {
  store_.configure(std::move(storage));
  if (stage_.num_blocks < 0) stage_.num_blocks = cfg.num_layers - stage_.first_block;
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
  const int64_t local_vocab = cfg.padded_vocab_size / T;
  const int vocab_start = int(tp_.rank * local_vocab);
  int word = -1;
  if (stage_.embedding) {
    add_layer(std::make_unique<EmbeddingLayer>(cfg, store_, &ws_, tp_), 0);
    word = int(store_.find("embedding.word_embeddings.weight") - &store_.all()[0]);
  }
  for (int i = stage_.first_block; i < stage_.first_block + stage_.num_blocks; i++) {
    const int first = int(store_.all().size());
    Recompute r = Recompute::None;
    if (cfg.recompute_granularity == "selective") r = Recompute::Selective;
    // Full: every block (uniform), or the first N blocks of this stage (block).
    if (cfg.recompute_granularity == "full" &&
        (cfg.recompute_method == "uniform" || i - stage_.first_block < cfg.recompute_num_layers))
      r = Recompute::Full;
    add_layer(std::make_unique<TransformerBlock>(cfg, i, store_, &ws_, tp_, r), first);
  }
  if (stage_.head) {
    const int first = int(store_.all().size());
    if (!cfg.tie_embeddings) {
      // Untied (--untie-embeddings-and-output-weights): the output layer's own weight, split by vocabulary.
      ParamSplit split{{cfg.padded_vocab_size, cfg.hidden_size}, 0, vocab_start, false, {}};
      word = own_output_ = store_.add("output_layer.weight", {local_vocab, cfg.hidden_size}, true, split);
    } else if (word < 0) {
      // The last stage's own copy of the tied word embedding (Megatron keeps it in sync over the
      // embedding group).
      ParamSplit split{{cfg.padded_vocab_size, cfg.hidden_size}, 0, vocab_start, false, "embedding.word_embeddings.weight"};
      word = tied_output_ = store_.add("output_layer.weight", {local_vocab, cfg.hidden_size}, true, split);
    }
    output_weight_ = word;
    auto head = std::make_unique<LmHead>(cfg, store_, &ws_, tp_, word, vocab_start);
    head_ = head.get();
    add_layer(std::move(head), first);
  }
  if (layers_.empty()) fail("a pipeline stage must hold at least one layer");
  // One storage unit per layer: the parameters it reads (the output layer also the tied word embedding).
  std::vector<std::vector<int>> units;
  for (size_t i = 0; i < layers_.size(); i++) {
    units.emplace_back();
    for (int k = layer_params_[i].first; k < layer_params_[i].second; k++) units.back().push_back(k);
  }
  if (stage_.head && word >= 0 && word < layer_params_.back().first) units.back().push_back(word);
  store_.finalize(stage_.flat_multiple, std::move(units));

  const int64_t N = int64_t(batch) * seq, Nl = tp_.local_rows(int(N)), h = cfg.hidden_size;
  const int64_t lf = cfg.ffn_hidden_size / T, lfc1 = cfg.fc1_width() / T, lqkv = cfg.qkv_width() / T;
  const int64_t lattn = cfg.attention_width() / T;
  if (cfg.activation_dtype == DType::BF16) {  // bf16 GEMM operands (Megatron's bf16 GEMMs)
    const int64_t lv = cfg.padded_vocab_size / T;
    ws_.bf16_in = Tensor({N * std::max({h, lf, lattn})}, DType::BF16);
    ws_.bf16_out = Tensor({N * std::max({h, lqkv, lfc1})}, DType::BF16);
    // A weight rounded into bf16 for its GEMM, unless every weight is stored in bf16 already (the GEMMs
    // then multiply the stored bits: ZeRO-3's gathered fp32 views and fp32 weight storage need it).
    if (!store_.weights_stored_bf16())
      ws_.bf16_w = Tensor({std::max({h * std::max({lqkv, lf, lattn}), stage_.head ? lv * h : 0})}, DType::BF16);
    gemm_operand_bytes_ = int64_t(ws_.bf16_in.nbytes() + ws_.bf16_out.nbytes() +
                                  (ws_.bf16_w.defined() ? ws_.bf16_w.nbytes() : 0));
    // The output layer's own weight (untied, or the last stage's copy of the tied embedding) is read only
    // by its bf16 GEMMs; a word embedding shared with this stage's embedding layer is also looked up.
    if (own_output_ >= 0 || tied_output_ >= 0) store_.read_as_bf16_only(output_weight_);
  }
  const int64_t allocated_before_activations = memory_stats().allocated;
  ws_.partial = Tensor({N, h});
  ws_.tmp = Tensor({Nl, h});
  ws_.dres = Tensor({Nl, h});
  ws_.dnorm = Tensor({N, std::max(h, lattn)});
  ws_.dffn = Tensor({N, lf});
  ws_.logit_chunk_rows = int(std::min<int64_t>(kLogitChunkRows, N));
  ws_.logits = Tensor({int64_t(ws_.logit_chunk_rows), int64_t(cfg.padded_vocab_size / T)});
  grad_a_ = Tensor({Nl, h});
  grad_b_ = Tensor({Nl, h});
  hidden_.resize(slots);
  boundaries_ = layers_.size() - (stage_.head ? 1 : 0);
  const bool half = cfg.activation_dtype != DType::F32;
  for (auto& b : hidden_)
    for (size_t i = half && boundaries_ ? boundaries_ - 1 : 0; i < boundaries_; i++) b.push_back(Tensor({Nl, h}));
  if (half && boundaries_ > 1)
    for (auto& t : passing_) t = Tensor({Nl, h});
  if (!stage_.embedding)
    for (int s = 0; s < slots; s++) input_.push_back(Tensor({Nl, h}));
  for (auto& layer : layers_) {
    layer->defer_weight_grads(stage_.defer_weight_grads);
    layer->allocate(batch, seq, slots);
  }
  activation_bytes_ = memory_stats().allocated - allocated_before_activations;
  for (size_t i = 0; i < layers_.size(); i++) {
    std::string label = layers_[i]->name();
    if (label == "embedding") label = "embed";
    else if (label == "output_layer") label = "lm_head";
    else label = label.substr(label.rfind('.') + 1);  // decoder.layers.N -> N
    profile_.push_back({label, 0, 0});
  }
  int64_t partial = 0;
  for (const auto& p : store_.all())
    if (p.split.tp_partial_grad) partial += p.numel();
  if (partial) partial_grads_ = Tensor({partial});
  if (store_.storage().grads != DType::F32) grad_staging_ = Tensor({int64_t(1) << 18});
}

void DecoderModel::init(uint64_t seed) {
  // Layer by layer, so a half-precision or sharded model never holds all its weights in fp32.
  for (size_t i = 0; i < layers_.size(); i++) {
    store_.acquire(int(i), false);
    layers_[i]->init_params(seed);
    // The tied copy draws from the word embedding's stream (by its canonical name): the same values.
    // An untied output weight draws from its own stream.
    const bool xavier = cfg_.init_method_xavier_uniform;
    if (i + 1 == layers_.size() && tied_output_ >= 0) init_weight(store_.at(tied_output_), seed, cfg_.init_method_std, xavier);
    if (i + 1 == layers_.size() && own_output_ >= 0) init_weight(store_.at(own_output_), seed, cfg_.init_method_std, xavier);
    store_.commit(int(i));
  }
}

Tensor DecoderModel::boundary(int slot, size_t i, int rows) {
  auto& h = hidden_[size_t(slot)];
  const Tensor& t = i + h.size() >= boundaries_ ? h[i + h.size() - boundaries_] : passing_[i % 2];
  return t.slice_rows(0, rows);
}

void DecoderModel::forward(const StepContext& ctx) {
  const int Nl = tp_.local_rows(ctx.mb->rows());
  const DType act = cfg_.residual_dtype();  // the residual stream's (fp32 with --fp32-residual-connection)
  Tensor unused;
  for (size_t i = 0; i < layers_.size(); i++) {
    Tensor in = i > 0 ? boundary(ctx.slot, i - 1, Nl) : stage_.embedding ? unused : input_[ctx.slot].slice_rows(0, Nl);
    Tensor out = i < boundaries_ ? boundary(ctx.slot, i, Nl) : unused;
    const auto t0 = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    // The output layer computes its weight gradient in the forward (fused cross-entropy), unless deferred.
    const bool grads = ctx.training && stage_.head && i + 1 == layers_.size() && !stage_.defer_weight_grads;
    store_.acquire(int(i), grads, -1, ParamStore::Widen::Fp32Readers);
    layers_[i]->forward(ctx, in, out);
    store_.release(int(i), grads);
    if (out.defined()) cpu::round_to_dtype(out.f32(), long(out.numel()), act);
    if (profiling_) {
      profile_[i].total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      profile_[i].calls++;
    }
  }
}

std::vector<DecoderModel::LayerTime> DecoderModel::take_profile() {
  std::vector<LayerTime> out = profile_;
  for (auto& p : profile_) p.total_ms = 0, p.calls = 0;
  return out;
}

std::vector<int> split_by_cost(const std::vector<double>& costs, int P) {
  const int L = int(costs.size()) - 2;
  if (L < P) fail("cannot split " + std::to_string(L) + " layers into " + std::to_string(P) + " pipeline stages");
  // best[p][j]: the least possible maximum stage cost placing blocks [0, j) on stages [0, p).
  auto stage_cost = [&](int p, int a, int b) {  // stage p holding blocks [a, b)
    double c = 0;
    for (int k = a; k < b; k++) c += costs[size_t(k + 1)];
    if (p == 0) c += costs.front();
    if (p == P - 1) c += costs.back();
    return c;
  };
  const double inf = 1e300;
  std::vector<std::vector<double>> best(size_t(P + 1), std::vector<double>(size_t(L + 1), inf));
  std::vector<std::vector<int>> cut(size_t(P + 1), std::vector<int>(size_t(L + 1), 0));
  best[0][0] = 0;
  for (int p = 1; p <= P; p++)
    for (int j = p; j <= L; j++)
      for (int i = p - 1; i < j; i++) {
        const double v = std::max(best[size_t(p - 1)][size_t(i)], stage_cost(p - 1, i, j));
        if (v < best[size_t(p)][size_t(j)]) best[size_t(p)][size_t(j)] = v, cut[size_t(p)][size_t(j)] = i;
      }
  std::vector<int> counts(static_cast<size_t>(P));
  for (int p = P, j = L; p > 0; p--) {
    const int i = cut[size_t(p)][size_t(j)];
    counts[size_t(p - 1)] = j - i;
    j = i;
  }
  return counts;
}

void DecoderModel::start_backward(const StepContext& ctx, const Tensor* output_grad, Tensor& dout, Tensor& din) {
  const int Nl = tp_.local_rows(ctx.mb->rows());
  dout = grad_a_.slice_rows(0, Nl), din = grad_b_.slice_rows(0, Nl);
  if (!stage_.head) {
    if (!output_grad) throw std::logic_error("a stage without the head needs the gradient of its output");
    std::memcpy(dout.f32(), output_grad->f32(), sizeof(float) * size_t(Nl) * size_t(cfg_.hidden_size));
  }
}

void DecoderModel::backward(const StepContext& ctx, const std::function<void(int)>& after_layer,
                        const Tensor* output_grad) {
  Tensor dout, din;
  start_backward(ctx, output_grad, dout, din);
  for (size_t i = layers_.size(); i-- > 0;) {
    const int skip = head_weight_skip(i);
    store_.acquire(int(i), true, skip, ParamStore::Widen::Fp32Readers);
    layers_[i]->backward(ctx, dout, din);
    store_.release(int(i), true, skip);
    if (i > 0 || !stage_.embedding) cpu::round_to_dtype(din.f32(), long(din.numel()), cfg_.residual_dtype());
    if (after_layer) after_layer(int(i));
    std::swap(dout, din);
  }
  input_grad_ = dout;  // after the last swap: what layer 0 wrote
}

int DecoderModel::head_weight_skip(size_t i) const {
  // The output weight's gradient was formed in the forward (fused cross-entropy): not touched by the
  // backward, unless deferred to the head's weight half.
  return stage_.head && i + 1 == layers_.size() && !stage_.defer_weight_grads ? output_weight_ : -1;
}

void DecoderModel::backward_input(const StepContext& ctx, const Tensor* output_grad) {
  Tensor dout, din;
  start_backward(ctx, output_grad, dout, din);
  for (size_t i = layers_.size(); i-- > 0;) {
    const int skip = head_weight_skip(i);
    store_.acquire(int(i), true, skip, ParamStore::Widen::Fp32Readers);
    layers_[i]->backward_input(ctx, dout, din);
    store_.release(int(i), true, skip);
    // The residual stream's dtype, as backward() rounds it (fp32 with --fp32-residual-connection).
    if (i > 0 || !stage_.embedding) cpu::round_to_dtype(din.f32(), long(din.numel()), cfg_.residual_dtype());
    std::swap(dout, din);
  }
  input_grad_ = dout;
}

void DecoderModel::backward_weight(const StepContext& ctx, const std::function<void(int)>& after_layer) {
  if (!stage_.defer_weight_grads) throw std::logic_error("backward_weight on a model that does not defer it");
  for (size_t i = layers_.size(); i-- > 0;) {
    store_.acquire(int(i), true, -1, ParamStore::Widen::Fp32Readers);
    layers_[i]->backward_weight(ctx);
    store_.release(int(i), true);
    if (after_layer) after_layer(int(i));
  }
}

void DecoderModel::logits(const std::vector<int>& rows, float* out) {
  if (tp_.active()) throw std::logic_error("generation runs on one process");
  if (!head_ || !stage_.embedding) throw std::logic_error("generation needs the whole model");
  store_.acquire(int(layers_.size()) - 1, false);
  head_->logits(hidden_[0].back(), rows, out);
}

double DecoderModel::local_grad_sum_squares() const {
  const DType gt = store_.storage().grads;
  double s = 0;
  for (const Segment& seg : store_.grad_segments()) {
    const Param& p = store_.at(seg.param);
    if ((p.tp_replicated() && tp_.rank != 0) || !p.split.tied_to.empty()) continue;
    s += cpu::sum_squares(store_.grad_data(seg), gt, long(seg.count));
  }
  return s;
}

int64_t DecoderModel::local_grad_zeros() const {
  const DType gt = store_.storage().grads;
  int64_t z = 0;
  for (const Segment& seg : store_.grad_segments()) {
    const Param& p = store_.at(seg.param);
    if ((p.tp_replicated() && tp_.rank != 0) || !p.split.tied_to.empty()) continue;
    z += cpu::count_zeros(store_.grad_data(seg), gt, long(seg.count));
  }
  return z;
}

double DecoderModel::local_param_sum_squares() const {
  const DType wt = store_.storage().weights;
  double s = 0;
  auto add = [&](const Segment& seg) {
    const Param& p = store_.at(seg.param);
    if ((p.tp_replicated() && tp_.rank != 0) || !p.split.tied_to.empty()) return;
    s += cpu::sum_squares(store_.weight_data(seg), wt, long(seg.count));
  };
  if (store_.storage().shard_weights) {
    for (const Segment& seg : store_.owned_slices()) add(seg);
  } else {
    for (int i = 0; i < int(store_.all().size()); i++) add(Segment{i, 0, store_.at(i).numel(), store_.at(i).offset});
  }
  return s;
}

void DecoderModel::reduce_partial_replica_grads() {
  if (!partial_grads_.defined() || !tp_.active()) return;
  // Packed into one buffer: one all-reduce for all the small LayerNorm and bias gradients.
  const DType gt = store_.storage().grads;
  float* buf = partial_grads_.f32();
  int64_t at = 0;
  for (const Segment& seg : store_.grad_segments())
    if (store_.at(seg.param).split.tp_partial_grad) {
      cpu::to_f32(store_.grad_data(seg), gt, buf + at, long(seg.count));
      at += seg.count;
    }
  tp_.all_reduce(buf, long(at));
  at = 0;
  for (const Segment& seg : store_.grad_segments())
    if (store_.at(seg.param).split.tp_partial_grad) {
      cpu::from_f32(buf + at, store_.grad_data(seg), gt, long(seg.count));
      at += seg.count;
    }
}

void DecoderModel::all_reduce_param_grad(int param, dist::Communicator& group) {
  for (const Segment& seg : store_.grad_segments())
    if (seg.param == param)
      all_reduce_in_fp32(group, store_.grad_data(seg), store_.storage().grads, seg.count, grad_staging_);
}

int64_t DecoderModel::num_params_on_rank() const {
  int64_t n = 0;
  for (const auto& p : store_.all()) n += p.numel();
  return n;
}

}  // namespace loom
