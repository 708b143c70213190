#include "loom/layers/param_store.h"

#include <stdexcept>

namespace loom {

int ParamStore::add(std::string name, std::vector<int64_t> shape, bool weight_decay, ParamSplit split) {
  if (finalized_) throw std::logic_error("ParamStore: add after finalize");
  Param p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.weight_decay = weight_decay;
  p.split = std::move(split);
  p.offset = total_;
  // Keep every parameter 16-float (64-byte) aligned so vector loads never straddle two parameters.
  total_ += (p.numel() + 15) / 16 * 16;
  params_.push_back(std::move(p));
  return int(params_.size()) - 1;
}

void ParamStore::finalize(int64_t multiple) {
  total_ = (total_ + multiple - 1) / multiple * multiple;
  values_ = Tensor({total_});
  grads_ = Tensor({total_});
  for (auto& p : params_) {
    p.value = values_.slice_rows(p.offset, p.offset + p.numel()).reshape(p.shape);
    p.grad = grads_.slice_rows(p.offset, p.offset + p.numel()).reshape(p.shape);
  }
  finalized_ = true;
}

Param* ParamStore::find(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace loom
