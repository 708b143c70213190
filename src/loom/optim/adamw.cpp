#include "loom/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/adamw.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/optim/offload.h"

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

AdamW::~AdamW() = default;

void AdamW::offload(const std::string& dir, int64_t block_elements) {
  const int64_t s = shard_end_ - shard_begin_;
  offload_ = std::make_unique<OffloadedMoments>(dir, s, block_elements);
  offload_->write(m_.f32(), v_.f32());
  m_ = Tensor();  // the moments now live only in the file
  v_ = Tensor();
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
  // Update elements [lo, hi) of the flat buffer with moments m, v that start at element `base`.
  auto update = [&](int64_t lo, int64_t hi, float* m, float* v, int64_t base) {
    for (auto& p : params_.all()) {
      // The part of this parameter inside the range (our shard, or one offloaded block of it).
      const int64_t b = std::max(p.offset, lo), e = std::min(p.offset + p.numel(), hi);
      if (b >= e) continue;
      cpu::AdamWConfig c{float(lr), float(opt_.beta1), float(opt_.beta2), float(opt_.eps),
                         p.weight_decay ? float(opt_.weight_decay) : 0.f, long(step_)};
      cpu::adamw_step(weights + b, params_.grads() + b, m + (b - base), v + (b - base), long(e - b), c);
    }
  };
  if (offload_) {
    offload_->for_each_block([&](int64_t first, int64_t count, float* m, float* v) {
      update(shard_begin_ + first, shard_begin_ + first + count, m, v, shard_begin_ + first);
    });
  } else {
    update(shard_begin_, shard_end_, m_.f32(), v_.f32(), shard_begin_);
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
  std::vector<float> om, ov;  // offloaded: the shard read back from the file
  const float* my_m = m_.defined() ? m_.f32() : nullptr;
  const float* my_v = v_.defined() ? v_.f32() : nullptr;
  if (offload_) {
    om.resize(size_t(s));
    ov.resize(size_t(s));
    offload_->read(om.data(), ov.data());
    my_m = om.data();
    my_v = ov.data();
  }
  if (!sharded()) {
    std::memcpy(m.data(), my_m, size_t(n) * 4);
    std::memcpy(v.data(), my_v, size_t(n) * 4);
    return;
  }
  shard_->all_gather(my_m, m.data(), size_t(s));
  shard_->all_gather(my_v, v.data(), size_t(s));
}

void AdamW::set_state(const float* m, const float* v) {
  const size_t s = size_t(shard_end_ - shard_begin_);
  if (offload_) {
    offload_->write(m + shard_begin_, v + shard_begin_);
    return;
  }
  std::memcpy(m_.f32(), m + shard_begin_, s * 4);
  std::memcpy(v_.f32(), v + shard_begin_, s * 4);
}

void clip_grads(ParamStore& params, double norm, double max_norm) {
  const double coeff = max_norm / (norm + 1e-6);
  if (max_norm > 0 && coeff < 1.0) cpu::scale_inplace(params.grads(), long(params.numel()), float(coeff));
}

}  // namespace loom
