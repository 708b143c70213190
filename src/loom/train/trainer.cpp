#include "loom/train/trainer.h"

#include <cmath>

#include "loom/core/rng.h"
#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/parallel/data_parallel.h"

namespace loom {

Trainer::Trainer(DecoderModel& model, AdamW& optimizer, LrScheduler& scheduler, TrainStepOptions opt, Timers& timers)
    : Trainer(std::vector<DecoderModel*>{&model}, std::vector<AdamW*>{&optimizer}, scheduler, std::move(opt), timers) {}

Trainer::Trainer(std::vector<DecoderModel*> chunks, std::vector<AdamW*> optimizers, LrScheduler& scheduler,
                 TrainStepOptions opt, Timers& timers)
    : chunks_(std::move(chunks)), opts_(std::move(optimizers)), model_(*chunks_.at(0)), sched_(scheduler),
      o_(std::move(opt)), timers_(timers), buffer_(o_.micro_batch, o_.seq) {
  if (o_.pipeline.size > 1 || chunks_.size() > 1)
    runner_ = std::make_unique<PipelineRunner>(chunks_, o_.pipeline, o_.micro_batch, o_.seq, o_.num_micro_batches, timers_);
  if (runner_) runner_->set_micro_batch_counts(o_.micro_batch_counts);
}

uint64_t Trainer::dropout_stream(int64_t iteration, int micro) const {
  // Dropout masks are a function of (seed, iteration, global micro-batch) only, whatever the layout.
  const uint64_t global_micro = uint64_t(micro) * uint64_t(o_.dp_size) + uint64_t(o_.dp_rank);
  return stream_key(o_.seed, 0xD0, uint64_t(iteration), global_micro);
}

void Trainer::all_reduce_embedding_grads() {
  // The tied word embedding lives on the first and the last stage: their gradients are summed. An untied
  // output layer is its own parameter (Megatron's share_embeddings_and_output_weights false): nothing to sum.
  if (!o_.embedding || o_.embedding->size() < 2 || !chunks_.front()->config().tie_embeddings) return;
  TimerScope t(timers_, "backward-embedding-all-reduce");
  DecoderModel* m = nullptr;
  int param = -1;
  if (o_.pipeline.rank == 0) {
    m = chunks_.front();
    param = m->params().index_of("embedding.word_embeddings.weight");
  } else if (is_last_stage()) {
    m = chunks_.back();
    if (Param* p = m->tied_output_weight()) param = int(p - &m->params().all()[0]);
  }
  if (m && param >= 0) m->all_reduce_param_grad(param, *o_.embedding);
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

double Trainer::sum_over_model(double local, bool sharded) const {
  if (sharded && o_.dp && o_.dp_size > 1) o_.dp->all_reduce(&local, 1);
  if (o_.model_parallel && o_.model_parallel->size() > 1)
    o_.model_parallel->all_reduce(&local, 1);
  else if (model_.tensor_parallel().active())
    model_.tensor_parallel().comm->all_reduce(&local, 1);
  return local;
}

std::optional<std::pair<double, double>> Trainer::optimizer_step() {
  // All these reductions are sums, so their order is free, with one constraint: buckets already in
  // flight (--overlap-grad-reduce) must land before anything else touches the gradients. Under ZeRO-2/3
  // the data-parallel sums happened layer by layer during the backward, and the embedding and
  // tensor-parallel sums work on the slices (they line up across stages and tensor-parallel ranks).
  bool reduced = false;
  for (GradReducer* r : o_.reducers) reduced |= r->active();
  if (reduced) {
    TimerScope t(timers_, "backward-params-all-reduce");
    for (GradReducer* r : o_.reducers) r->finish();
  }
  all_reduce_embedding_grads();
  for (DecoderModel* m : chunks_) m->reduce_partial_replica_grads();
  TimerScope t(timers_, "optimizer");
  float unscale = 1.0f;
  if (o_.scaler) {
    // Megatron's _unscale_main_grads_and_check_for_nan: fp16 gradients overflow to inf past 65504;
    // any inf/NaN anywhere skips the step for every rank and lets the scaler back off. The unscaling
    // itself is applied as the optimizer reads the gradients.
    TimerScope u(timers_, "optimizer-unscale-and-check-inf");
    int64_t found = 0;
    for (DecoderModel* m : chunks_) {
      const ParamStore& ps = m->params();
      for (const Segment& seg : ps.grad_segments())
        if (cpu::has_inf_or_nan(ps.grad_data(seg), ps.storage().grads, long(seg.count))) found = 1;
    }
    if (o_.world && o_.world->size() > 1) o_.world->all_reduce(&found, 1, dist::ReduceOp::Max);
    o_.scaler->update(found != 0);
    if (found) return std::nullopt;
    unscale = o_.scaler->inv_scale();
  }
  double norm;
  float clip = 1.0f;
  {
    TimerScope c(timers_, "optimizer-clip-main-grad");
    double sq = 0;
    for (DecoderModel* m : chunks_) sq += m->local_grad_sum_squares();
    // ZeRO-2/3: each rank holds different slices; their sums add up over the group.
    sq = sum_over_model(sq, !model_.params().grads_whole());
    // The norm of the unscaled gradients (a power-of-two scale factors out of the sum exactly).
    norm = std::sqrt(sq) * double(unscale);
    // Megatron's clip_grad_norm_fp32: coeff = max_norm / (norm + 1e-6), applied when below 1.
    const double coeff = o_.clip_grad / (norm + 1e-6);
    if (o_.clip_grad > 0 && coeff < 1.0) clip = float(coeff);
  }
  if (o_.log_num_zeros) {
    // Megatron's count_zeros_fp32 over the main gradients: every parameter once (as the norm).
    int64_t z = 0;
    for (DecoderModel* m : chunks_) z += m->local_grad_zeros();
    num_zeros_ = sum_over_model(double(z), !model_.params().grads_whole());
  }
  const double lr = sched_.lr();
  // The gradients are converted (and unscaled and clipped) as the optimizer reads them: Megatron's copy
  // to fp32 main gradients is part of the inner step, and no fp32 copy of the gradients exists. The
  // timers shown are those Megatron shows at its default level (reference log 002).
  for (AdamW* o : opts_) o->inner_step(lr, unscale, clip);
  {
    std::optional<TimerScope> c;
    if (opts_.front()->has_main_weights()) c.emplace(timers_, "optimizer-copy-main-to-model-params");
    for (AdamW* o : opts_) o->copy_main_to_model();
  }
  return std::make_pair(norm, lr);
}

StepResult Trainer::train_step(const SampleSet& data, int64_t consumed, int64_t iteration, int num_micro) {
  for (DecoderModel* m : chunks_) m->params().zero_grads();
  const int M = num_micro < 0 ? o_.num_micro_batches : num_micro;
  const float grad_scale = loss_scale() / float(M);
  double loss = 0;
  if (runner_) {
    loss = runner_->run(
        true, [&](int m, BatchBuffer& b) { b.load(data, first_sample(consumed, m), o_.batch); },
        [&](int m) { return dropout_stream(iteration, m); }, grad_scale, M);
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
    r.num_zeros = o_.log_num_zeros ? num_zeros_ : -1;
    sched_.step(int64_t(M) * o_.micro_batch * o_.dp_size);  // Megatron: only after a successful update
  } else {
    r.skipped = true;
  }
  if (o_.log_params_norm) {
    // Megatron's calc_params_l2_norm, every iteration (after the update, or of the unchanged weights).
    double sq = 0;
    for (DecoderModel* m : chunks_) sq += m->local_param_sum_squares();
    r.params_norm = std::sqrt(sum_over_model(sq, model_.params().storage().shard_weights));
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
