#include "loom/layers/param_store.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/precision.h"

namespace loom {

namespace {
char* at_element(const Tensor& t, int64_t i) { return static_cast<char*>(t.raw()) + size_t(i) * dtype_size(t.dtype()); }
// A parameter's view of elements [at, at + numel) of a buffer that owns the memory.
Tensor view(const Tensor& buf, int64_t at, const Param& p) { return buf.slice_rows(at, at + p.numel()).reshape(p.shape); }
}  // namespace

void ParamStore::configure(ParamStorage storage) {
  if (finalized_ || !params_.empty()) throw std::logic_error("ParamStore: configure before adding parameters");
  if ((storage.shard_grads || storage.shard_weights) && !storage.zero_group)
    throw std::logic_error("ParamStore: sharding needs a ZeRO group");
  if (storage.shard_weights) storage.shard_grads = true;
  storage_ = std::move(storage);
  values_direct_ = storage_.weights == DType::F32 && !storage_.shard_weights;
  grads_direct_ = storage_.grads == DType::F32 && !storage_.shard_grads;
}

int ParamStore::zero_size() const { return storage_.zero_group ? storage_.zero_group->size() : 1; }
int ParamStore::zero_rank() const { return storage_.zero_group ? storage_.zero_group->rank() : 0; }

int64_t ParamStore::padded(const Param& p) const {
  // 16 floats (64 bytes) per slice keep vector loads inside one parameter and one slice.
  const int64_t m = 16 * zero_size();
  return (p.numel() + m - 1) / m * m;
}

int ParamStore::add(std::string name, std::vector<int64_t> shape, bool weight_decay, ParamSplit split) {
  if (finalized_) throw std::logic_error("ParamStore: add after finalize");
  Param p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.weight_decay = weight_decay;
  p.split = std::move(split);
  p.offset = total_;
  total_ += padded(p);
  params_.push_back(std::move(p));
  return int(params_.size()) - 1;
}

void ParamStore::finalize(int64_t multiple, std::vector<std::vector<int>> units) {
  const int D = zero_size();
  total_ = (total_ + multiple - 1) / multiple * multiple;
  shard_pos_.clear();
  shard_total_ = 0;
  for (const auto& p : params_) {
    shard_pos_.push_back(shard_total_);
    shard_total_ += padded(p) / D;
  }
  if (units.empty()) {
    units.emplace_back();
    for (int i = 0; i < int(params_.size()); i++) units.back().push_back(i);
  }
  units_.clear();
  max_unit_ = 0;
  for (auto& list : units) {
    Unit u;
    u.params = std::move(list);
    for (int i : u.params) {
      u.at.push_back(u.size);
      u.size += padded(params_[size_t(i)]);
    }
    max_unit_ = std::max(max_unit_, u.size);
    units_.push_back(std::move(u));
  }
  w_ = Tensor({storage_.shard_weights ? shard_total_ : total_}, storage_.weights);
  g_ = Tensor({storage_.shard_grads ? shard_total_ : total_}, storage_.grads);
  if (!values_direct_) work_w_ = Tensor({max_unit_});
  if (!grads_direct_) work_g_ = Tensor({max_unit_});
  for (auto& p : params_) {
    if (values_direct_) p.value = view(w_, p.offset, p);
    if (grads_direct_) p.grad = view(g_, p.offset, p);
    if (storage_.weights == DType::BF16 && !storage_.shard_weights)
      p.stored_bf16 = reinterpret_cast<const uint16_t*>(at_element(w_, p.offset));
  }
  grad_segments_.clear();
  if (storage_.shard_grads) {
    grad_segments_ = owned_slices();
  } else {
    for (int i = 0; i < int(params_.size()); i++)
      grad_segments_.push_back({i, 0, params_[size_t(i)].numel(), params_[size_t(i)].offset});
  }
  finalized_ = true;
}

Param* ParamStore::find(const std::string& name) {
  const int i = index_of(name);
  return i < 0 ? nullptr : &params_[size_t(i)];
}

int ParamStore::index_of(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); i++)
    if (params_[i].name == name) return int(i);
  return -1;
}

std::vector<Segment> ParamStore::owned_slices(int rank) const {
  const int D = zero_size(), r = rank < 0 ? zero_rank() : rank;
  std::vector<Segment> out;
  for (int i = 0; i < int(params_.size()); i++) {
    const Param& p = params_[size_t(i)];
    const int64_t L = padded(p) / D, begin = int64_t(r) * L;
    const int64_t count = std::clamp<int64_t>(p.numel() - begin, 0, L);
    if (count > 0) out.push_back({i, begin, count, shard_pos_[size_t(i)]});
  }
  return out;
}

void* ParamStore::weight_data(const Segment& s) const {
  return at_element(w_, storage_.shard_weights ? s.pos : params_[size_t(s.param)].offset + s.begin);
}

void* ParamStore::grad_data(const Segment& s) const {
  return at_element(g_, storage_.shard_grads ? s.pos : params_[size_t(s.param)].offset + s.begin);
}

int64_t ParamStore::working_bytes() const {
  return int64_t(work_w_.nbytes() + work_g_.nbytes() + full_.nbytes());
}

void ParamStore::acquire(int unit, bool with_grads, int skip_grad, Widen widen) {
  const Unit& u = units_[size_t(unit)];
  const DType wt = storage_.weights;
  const size_t es = dtype_size(wt);
  float* work = work_w_.defined() ? work_w_.f32() : nullptr;
  if (!values_direct_) {
    if (storage_.shard_weights) {
      // Every rank contributes its slice of each parameter, gathered in the storage type straight into
      // the parameter's fp32 working region (rank-major slices: the parameter in order), then widened.
      const int D = zero_size();
      for (size_t k = 0; k < u.params.size(); k++) {
        const int i = u.params[k];
        const int64_t L = padded(params_[size_t(i)]) / D;
        storage_.zero_group->all_gather(at_element(w_, shard_pos_[size_t(i)]), work + u.at[k], size_t(L) * es,
                                        dist::DType::U8);
        cpu::to_f32_in_place(work + u.at[k], wt, long(L * D));
      }
    } else {
      for (size_t k = 0; k < u.params.size(); k++) {
        const Param& p = params_[size_t(u.params[k])];
        if (widen == Widen::Fp32Readers && p.read_as_bf16_only && p.stored_bf16) continue;
        cpu::to_f32(at_element(w_, p.offset), wt, work + u.at[k], long(p.numel()));
      }
    }
    for (size_t k = 0; k < u.params.size(); k++) {
      Param& p = params_[size_t(u.params[k])];
      p.value = view(work_w_, u.at[k], p);
    }
  }
  if (with_grads && !grads_direct_) {
    float* wg = work_g_.f32();
    for (size_t k = 0; k < u.params.size(); k++) {
      if (u.params[k] == skip_grad) continue;
      Param& p = params_[size_t(u.params[k])];
      if (storage_.shard_grads)  // this micro-batch's gradients only; the padding goes through the reduce-scatter
        std::memset(wg + u.at[k], 0, sizeof(float) * size_t(padded(p)));
      else
        cpu::to_f32(at_element(g_, p.offset), storage_.grads, wg + u.at[k], long(p.numel()));
      p.grad = view(work_g_, u.at[k], p);
    }
  }
}

void ParamStore::release(int unit, bool grads_written, int skip_grad) {
  if (!grads_written || grads_direct_) return;
  const Unit& u = units_[size_t(unit)];
  const float* wg = work_g_.f32();
  if (!storage_.shard_grads) {
    for (size_t k = 0; k < u.params.size(); k++) {
      if (u.params[k] == skip_grad) continue;
      const Param& p = params_[size_t(u.params[k])];
      cpu::from_f32(wg + u.at[k], at_element(g_, p.offset), storage_.grads, long(p.numel()));
    }
    return;
  }
  // ZeRO-2/3: sum each parameter's gradients over the group, each rank receiving its slice (in place: a
  // parameter's padded region is its D slices, rank-major), and add their average to the stored slice.
  const int D = zero_size();
  for (size_t k = 0; k < u.params.size(); k++) {
    const int i = u.params[k];
    if (i == skip_grad) continue;
    const int64_t L = padded(params_[size_t(i)]) / D;
    float* region = work_g_.f32() + u.at[k];
    storage_.zero_group->reduce_scatter(region, region, size_t(L));
    cpu::accumulate_from_f32(at_element(g_, shard_pos_[size_t(i)]), storage_.grads, region, long(L), 1.0f / float(D));
  }
}

void ParamStore::commit(int unit) {
  if (values_direct_) return;
  const Unit& u = units_[size_t(unit)];
  const int D = zero_size(), r = zero_rank();
  for (size_t k = 0; k < u.params.size(); k++) {
    const int i = u.params[k];
    const Param& p = params_[size_t(i)];
    const float* v = work_w_.f32() + u.at[k];
    if (storage_.shard_weights) {
      const int64_t L = padded(p) / D;
      cpu::from_f32(v + r * L, at_element(w_, shard_pos_[size_t(i)]), storage_.weights, long(L));
    } else {
      cpu::from_f32(v, at_element(w_, p.offset), storage_.weights, long(p.numel()));
    }
  }
}

void ParamStore::acquire_full() {
  if (values_direct_) return;
  full_ = Tensor({total_});
  for (int u = 0; u < num_units(); u++) {
    acquire(u, false);
    const Unit& un = units_[size_t(u)];
    for (size_t k = 0; k < un.params.size(); k++) {
      const Param& p = params_[size_t(un.params[k])];
      std::memcpy(full_.f32() + p.offset, work_w_.f32() + un.at[k], sizeof(float) * size_t(padded(p)));
    }
  }
  for (auto& p : params_) p.value = view(full_, p.offset, p);
}

void ParamStore::commit_full() {
  if (values_direct_) return;
  if (!full_.defined()) throw std::logic_error("ParamStore: commit_full without acquire_full");
  const int D = zero_size(), r = zero_rank();
  for (size_t i = 0; i < params_.size(); i++) {
    const Param& p = params_[i];
    if (storage_.shard_weights) {
      const int64_t L = padded(p) / D;
      cpu::from_f32(full_.f32() + p.offset + r * L, at_element(w_, shard_pos_[i]), storage_.weights, long(L));
    } else {
      cpu::from_f32(full_.f32() + p.offset, at_element(w_, p.offset), storage_.weights, long(p.numel()));
    }
  }
}

void ParamStore::release_full() {
  if (values_direct_) return;
  for (auto& p : params_) p.value = Tensor();  // the views would keep the copy alive
  full_ = Tensor();
}

void ParamStore::all_gather_weights() {
  const int D = zero_size(), r = zero_rank();
  if (D <= 1 || storage_.shard_weights) return;
  // In place, parameter by parameter: its padded region is the D slices, rank-major.
  const size_t es = dtype_size(storage_.weights);
  for (const Param& p : params_) {
    const int64_t L = padded(p) / D;
    storage_.zero_group->all_gather(at_element(w_, p.offset + r * L), at_element(w_, p.offset), size_t(L) * es,
                                    dist::DType::U8);
  }
}

}  // namespace loom
