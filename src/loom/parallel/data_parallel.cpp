#include "loom/parallel/data_parallel.h"

#include <algorithm>
#include <cstring>

#include "loom/kernels/cpu/adamw.h"
#include "loom/parallel/reduce_in_fp32.h"

namespace loom {

GradReducer::GradReducer(DecoderModel& model, std::shared_ptr<dist::Communicator> dp, int64_t bucket_elements,
                         bool overlap)
    : model_(model), dp_(std::move(dp)), overlap_(overlap && model.params().grads_direct()) {
  auto& params = model_.params().all();
  bucket_of_param_.assign(params.size(), -1);
  if (!active()) return;
  // Walk parameters from the last registered (first to finish in backward) to the first.
  Bucket cur;
  bool open = false;
  for (int i = int(params.size()) - 1; i >= 0; i--) {
    const Param& p = params[size_t(i)];
    const int64_t begin = p.offset, end = i + 1 < int(params.size()) ? params[size_t(i) + 1].offset : model_.params().numel();
    if (!open) {
      cur = Bucket{};
      cur.end = end;
      cur.last_param = i;
      open = true;
    }
    cur.begin = begin;
    cur.first_param = i;
    bucket_of_param_[size_t(i)] = int(buckets_.size());
    if (cur.end - cur.begin >= bucket_elements || i == 0) {
      buckets_.push_back(std::move(cur));
      open = false;
    }
  }
}

void GradReducer::begin_last_backward() {
  if (!active()) return;
  in_backward_ = overlap_;
  for (auto& b : buckets_) {
    b.pending_params = b.last_param - b.first_param + 1;
    b.started = false;
  }
}

void GradReducer::start(Bucket& b) {
  b.started = true;
  float* g = model_.params().grads() + b.begin;
  b.request = dp_->iall_reduce(g, size_t(b.end - b.begin));
}

void GradReducer::after_layer(int layer) {
  if (!in_backward_) return;
  auto [first, last] = model_.layer_params(layer);
  for (int i = first; i < last; i++) {
    Bucket& b = buckets_[size_t(bucket_of_param_[size_t(i)])];
    if (--b.pending_params == 0) start(b);
  }
  // Give MPI a chance to progress the reductions already in flight.
  for (auto& b : buckets_)
    if (b.started && b.request.active()) b.request.test();
}

void GradReducer::finish() {
  in_backward_ = false;
  if (!active()) return;
  ParamStore& store = model_.params();
  if (!store.grads_direct()) {  // half-precision gradients: summed in fp32, stored rounded
    all_reduce_in_fp32(*dp_, store.grad_storage(), store.storage().grads, store.numel(), model_.grad_staging(),
                       1.0f / float(dp_->size()));
    return;
  }
  for (auto& b : buckets_) {
    if (!b.started) start(b);
    b.request.wait();
    b.started = false;
  }
  cpu::scale_inplace(model_.params().grads(), long(model_.params().numel()), 1.0f / float(dp_->size()));
}

}  // namespace loom
