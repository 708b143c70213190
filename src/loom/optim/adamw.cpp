#include "loom/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/adamw.h"
#include "loom/kernels/cpu/precision.h"

namespace loom {

AdamW::AdamW(ParamStore& params, AdamWOptions opt, std::shared_ptr<dist::Communicator> shard_over)
    : params_(params), opt_(opt), shard_(std::move(shard_over)) {
  const int64_t n = params.numel();
  if (sharded()) {
    const int D = shard_->size();
    if (n % D) throw std::logic_error("flat parameter buffer not divisible by the data-parallel size");
    shard_begin_ = n / D * shard_->rank();
    shard_end_ = shard_begin_ + n / D;
  } else {
    shard_begin_ = 0;
    shard_end_ = n;
  }
  m_ = Tensor({shard_end_ - shard_begin_});
  v_ = Tensor({shard_end_ - shard_begin_});
}

void AdamW::use_main_weights(DType model_dtype) {
  model_dtype_ = model_dtype;
  if (model_dtype == DType::F32) return;
  main_ = Tensor({shard_end_ - shard_begin_});
  std::memcpy(main_.f32(), params_.values() + shard_begin_, sizeof(float) * size_t(shard_end_ - shard_begin_));
  cpu::round_to_dtype(params_.values(), long(params_.numel()), model_dtype);
}

void AdamW::gather_main_weights(std::vector<float>& w) {
  const int64_t n = params_.numel(), s = shard_end_ - shard_begin_;
  w.assign(size_t(n), 0.f);
  const float* src = main_.defined() ? main_.f32() : params_.values() + shard_begin_;
  if (sharded())
    shard_->all_gather(src, w.data(), size_t(s));
  else
    std::memcpy(w.data(), src, size_t(n) * 4);
}

void AdamW::step(double lr) {
  step_++;
  // With main weights the update applies to them (fp32) and the model gets their rounded values.
  float* weights = main_.defined() ? main_.f32() - shard_begin_ : params_.values();
  for (auto& p : params_.all()) {
    // The part of this parameter inside our shard (all of it without ZeRO).
    const int64_t b = std::max(p.offset, shard_begin_), e = std::min(p.offset + p.numel(), shard_end_);
    if (b >= e) continue;
    cpu::AdamWConfig c{float(lr), float(opt_.beta1), float(opt_.beta2), float(opt_.eps),
                       p.weight_decay ? float(opt_.weight_decay) : 0.f, long(step_)};
    cpu::adamw_step(weights + b, params_.grads() + b, m_.f32() + (b - shard_begin_),
                    v_.f32() + (b - shard_begin_), long(e - b), c);
  }
  if (main_.defined()) {
    float* model = params_.values() + shard_begin_;
    std::memcpy(model, main_.f32(), sizeof(float) * size_t(shard_end_ - shard_begin_));
    cpu::round_to_dtype(model, long(shard_end_ - shard_begin_), model_dtype_);
  }
  // ZeRO: every rank updated its shard; all-gather the parameters (in place).
  if (sharded()) shard_->all_gather(params_.values() + shard_begin_, params_.values(), size_t(shard_end_ - shard_begin_));
}

void AdamW::gather_state(std::vector<float>& m, std::vector<float>& v) {
  const int64_t n = params_.numel(), s = shard_end_ - shard_begin_;
  m.assign(size_t(n), 0.f);
  v.assign(size_t(n), 0.f);
  if (!sharded()) {
    std::memcpy(m.data(), m_.f32(), size_t(n) * 4);
    std::memcpy(v.data(), v_.f32(), size_t(n) * 4);
    return;
  }
  shard_->all_gather(m_.f32(), m.data(), size_t(s));
  shard_->all_gather(v_.f32(), v.data(), size_t(s));
}

void AdamW::set_state(const float* m, const float* v) {
  const size_t s = size_t(shard_end_ - shard_begin_);
  std::memcpy(m_.f32(), m + shard_begin_, s * 4);
  std::memcpy(v_.f32(), v + shard_begin_, s * 4);
}

void clip_grads(ParamStore& params, double norm, double max_norm) {
  const double coeff = max_norm / (norm + 1e-6);
  if (max_norm > 0 && coeff < 1.0) cpu::scale_inplace(params.grads(), long(params.numel()), float(coeff));
}

}  // namespace loom
