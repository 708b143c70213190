#include "loom/train/trainer.h"

#include <cmath>

#include "loom/core/rng.h"
#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/parallel/data_parallel.h"

namespace loom {

Trainer::Trainer(GptModel& model, AdamW& optimizer, LrScheduler& scheduler, TrainStepOptions opt, Timers& timers)
    : Trainer(std::vector<GptModel*>{&model}, std::vector<AdamW*>{&optimizer}, scheduler, std::move(opt), timers) {}

Trainer::Trainer(std::vector<GptModel*> chunks, std::vector<AdamW*> optimizers, LrScheduler& scheduler,
                 TrainStepOptions opt, Timers& timers)
    : chunks_(std::move(chunks)), opts_(std::move(optimizers)), model_(*chunks_.at(0)), sched_(scheduler),
      o_(std::move(opt)), timers_(timers), buffer_(o_.micro_batch, o_.seq) {
  if (o_.pipeline.size > 1 || chunks_.size() > 1)
    runner_ = std::make_unique<PipelineRunner>(chunks_, o_.pipeline, o_.micro_batch, o_.seq, o_.num_micro_batches, timers_);
}

uint64_t Trainer::dropout_stream(int64_t iteration, int micro) const {
  // Dropout masks are a function of (seed, iteration, global micro-batch) only, whatever the layout.
  const uint64_t global_micro = uint64_t(micro) * uint64_t(o_.dp_size) + uint64_t(o_.dp_rank);
  return stream_key(o_.seed, 0xD0, uint64_t(iteration), global_micro);
}

void Trainer::all_reduce_embedding_grads() {
  // The tied word embedding lives on the first and the last stage: their gradients are summed.
  if (!o_.embedding || o_.embedding->size() < 2) return;
  TimerScope t(timers_, "backward-embedding-all-reduce");
  Param* p = nullptr;
  if (o_.pipeline.rank == 0) p = chunks_.front()->params().find("embedding.word_embeddings.weight");
  else if (is_last_stage()) p = chunks_.back()->tied_output_weight();
  if (p) o_.embedding->all_reduce(p->grad.f32(), size_t(p->numel()));
}

int64_t Trainer::first_sample(int64_t consumed, int micro) const {
  // Megatron's MegatronPretrainingSampler: each step of micro_batch x dp samples is split by rank.
  return consumed + int64_t(micro) * o_.micro_batch * o_.dp_size + int64_t(o_.dp_rank) * o_.micro_batch;
}

double Trainer::forward_backward_loaded(uint64_t rng_key, float loss_grad_scale, bool last) {
  double loss_sum = 0, mask_sum = 0;
  StepContext ctx;
  ctx.mb = &buffer_.micro_batch();
  ctx.training = true;
  ctx.rng_key = rng_key;
  ctx.loss_grad_scale = loss_grad_scale;
  ctx.loss_sum = &loss_sum;
  ctx.mask_sum = &mask_sum;
  {
    TimerScope t(timers_, "forward-compute");
    model_.forward(ctx);
  }
  {
    TimerScope t(timers_, "backward-compute");
    GradReducer* r = !o_.reducers.empty() && o_.reducers[0]->active() ? o_.reducers[0] : nullptr;
    if (r && last) {
      r->begin_last_backward();
      model_.backward(ctx, [r](int layer) { r->after_layer(layer); });
    } else {
      model_.backward(ctx);
    }
  }
  return mask_sum > 0 ? loss_sum / mask_sum : 0.0;
}

double Trainer::dp_mean(double v) const {
  if (o_.dp && o_.dp_size > 1) o_.dp->all_reduce(&v, 1);
  return v / o_.dp_size;
}

float Trainer::loss_scale() const { return o_.scaler ? o_.scaler->scale() : 1.0f; }

std::optional<std::pair<double, double>> Trainer::optimizer_step() {
  // All these reductions are sums, so their order is free, with two constraints: a ZeRO-2 reduce-scatter
  // leaves whole gradients nowhere, so the embedding and tensor-parallel sums go before it; and buckets
  // already in flight (--overlap-grad-reduce) must land before anything else touches the gradients.
  bool reduced = false, scatter = false;
  for (GradReducer* r : o_.reducers) {
    reduced |= r->active();
    scatter |= r->active() && r->scatters();
  }
  auto data_parallel = [&] {
    if (!reduced) return;
    TimerScope t(timers_, "backward-params-all-reduce");
    for (GradReducer* r : o_.reducers) r->finish();
  };
  if (!scatter) data_parallel();
  all_reduce_embedding_grads();
  for (GptModel* m : chunks_) m->reduce_partial_replica_grads();
  if (scatter) data_parallel();
  TimerScope t(timers_, "optimizer");
  if (o_.scaler) {
    // Megatron's _unscale_main_grads_and_check_for_nan: fp16 gradients overflow to inf past 65504;
    // any inf/NaN anywhere skips the step for every rank and lets the scaler back off.
    TimerScope u(timers_, "optimizer-unscale-and-check-inf");
    int64_t found = 0;
    for (size_t c = 0; c < chunks_.size(); c++) {
      const int64_t b = o_.zero_stage >= 2 ? opts_[c]->shard_begin() : 0;
      const int64_t e = o_.zero_stage >= 2 ? opts_[c]->shard_end() : chunks_[c]->params().numel();
      float* g = chunks_[c]->params().grads() + b;
      if (o_.fp16_grads) cpu::round_to_dtype(g, long(e - b), DType::F16);
      found |= unscale_and_check(g, long(e - b), o_.scaler->inv_scale()) ? 1 : 0;
    }
    if (o_.world && o_.world->size() > 1) o_.world->all_reduce(&found, 1, dist::ReduceOp::Max);
    o_.scaler->update(found != 0);
    if (found) return std::nullopt;
  }
  double norm;
  {
    TimerScope c(timers_, "optimizer-clip-main-grad");
    double sq = 0;
    for (size_t c = 0; c < chunks_.size(); c++) {
      // ZeRO-2: only this rank's shard holds reduced gradients; the shards' sums add up over the group.
      if (o_.zero_stage >= 2)
        sq += chunks_[c]->local_grad_sum_squares(opts_[c]->shard_begin(), opts_[c]->shard_end());
      else
        sq += chunks_[c]->local_grad_sum_squares();
    }
    if (o_.zero_stage >= 2 && o_.dp && o_.dp_size > 1) o_.dp->all_reduce(&sq, 1);
    if (o_.model_parallel && o_.model_parallel->size() > 1)
      o_.model_parallel->all_reduce(&sq, 1);
    else if (model_.tensor_parallel().active())
      model_.tensor_parallel().comm->all_reduce(&sq, 1);
    norm = std::sqrt(sq);
    for (GptModel* m : chunks_) clip_grads(m->params(), norm, o_.clip_grad);
  }
  const double lr = sched_.lr();
  for (AdamW* o : opts_) o->step(lr);
  return std::make_pair(norm, lr);
}

StepResult Trainer::train_step(const SampleSet& data, int64_t consumed, int64_t iteration) {
  for (GptModel* m : chunks_) m->params().zero_grads();
  const int M = o_.num_micro_batches;
  const float grad_scale = loss_scale() / float(M);
  double loss = 0;
  if (runner_) {
    loss = runner_->run(
        true, [&](int m, BatchBuffer& b) { b.load(data, first_sample(consumed, m), o_.batch); },
        [&](int m) { return dropout_stream(iteration, m); }, grad_scale);
  } else {
    for (int m = 0; m < M; m++) {
      {
        TimerScope t(timers_, "batch-generator");
        buffer_.load(data, first_sample(consumed, m), o_.batch);
      }
      loss += forward_backward_loaded(dropout_stream(iteration, m), grad_scale, m == M - 1);
    }
  }
  StepResult r;
  r.loss = dp_mean(loss / M);
  if (auto stepped = optimizer_step()) {
    std::tie(r.grad_norm, r.lr) = *stepped;
    sched_.step(int64_t(M) * o_.micro_batch * o_.dp_size);  // Megatron: only after a successful update
  } else {
    r.skipped = true;
  }
  return r;
}

double Trainer::evaluate(const SampleSet& data, int64_t first, int iters) {
  double total = 0;
  const int M = o_.num_micro_batches;
  if (runner_) {
    for (int it = 0; it < iters; it++) {
      const int64_t base = first + int64_t(it) * M * o_.micro_batch * o_.dp_size;
      total += runner_->run(
          false, [&](int m, BatchBuffer& b) { b.load(data, first_sample(base, m), o_.batch); },
          [](int) { return uint64_t(0); }, 1.0f);
    }
    return iters > 0 ? dp_mean(total / (double(iters) * M)) : 0.0;
  }
  for (int it = 0; it < iters; it++) {
    for (int m = 0; m < M; m++) {
      buffer_.load(data, first_sample(first + int64_t(it) * M * o_.micro_batch * o_.dp_size, m), o_.batch);
      double loss_sum = 0, mask_sum = 0;
      StepContext ctx;
      ctx.mb = &buffer_.micro_batch();
      ctx.training = false;
      ctx.loss_sum = &loss_sum;
      ctx.mask_sum = &mask_sum;
      model_.forward(ctx);
      total += mask_sum > 0 ? loss_sum / mask_sum : 0.0;
    }
  }
  return iters > 0 ? dp_mean(total / (double(iters) * M)) : 0.0;
}

}  // namespace loom
