#include "loom/layers/saved_tensors.h"

#include <stdexcept>

#include "loom/kernels/cpu/precision.h"

namespace loom {

SavedTensors::SavedTensors(Recompute recompute, DType activation_dtype, std::shared_ptr<SharedWorkingSet> working)
    : recompute_(recompute), activation_dtype_(activation_dtype), working_(std::move(working)) {}

SavedTensors::Handle SavedTensors::add(int64_t numel, Kind kind, Keep keep) {
  entries_.push_back({numel, kind, keep, -1});
  return Handle{int(entries_.size()) - 1};
}

bool SavedTensors::kept(const Entry& e) const {
  switch (e.keep) {
    case Keep::Always: return true;
    case Keep::UnlessFull: return recompute_ != Recompute::Full;
    case Keep::WithoutRecompute: return recompute_ == Recompute::None;
    case Keep::Never: return false;
  }
  return false;
}

void SavedTensors::allocate(int slots) {
  // The shared working set holds every tensor that is not kept in fp32 per slot; index i serves the i-th
  // declaration of every block, sized for the largest.
  auto& shared = working_->tensors;
  if (shared.size() < entries_.size()) shared.resize(entries_.size());
  for (size_t i = 0; i < entries_.size(); i++) {
    const Entry& e = entries_[i];
    if (!half() && kept(e)) continue;
    if (!shared[i].defined() || shared[i].numel() < e.numel) shared[i] = Tensor({e.numel});
  }
  if (half()) {
    for (Entry& e : entries_)
      if (kept(e)) e.stash_id = stash_.add(e.numel, e.kind == Kind::Statistic ? DType::F32 : activation_dtype_);
    stash_.allocate(slots);
    kept_numel_.assign(size_t(slots), std::vector<int64_t>(entries_.size(), 0));
    return;
  }
  per_slot_.assign(size_t(slots), std::vector<Tensor>(entries_.size()));
  for (auto& slot : per_slot_)
    for (size_t i = 0; i < entries_.size(); i++)
      if (kept(entries_[i])) slot[i] = Tensor({entries_[i].numel});
}

Tensor SavedTensors::at(Handle h, int slot) const {
  const Entry& e = entries_[size_t(h.index)];
  if (!half() && kept(e)) return per_slot_[size_t(slot)][size_t(h.index)];
  return working_->tensors[size_t(h.index)];
}

void SavedTensors::keep(Handle h, float* x, int64_t n, int stash_slot) const {
  const Entry& e = entries_[size_t(h.index)];
  if (n > e.numel) throw std::logic_error("saved tensor larger than declared");
  if (half() && stash_slot >= 0 && kept(e)) {
    stash_.put(stash_slot, e.stash_id, x, n);  // rounds in place to what it keeps
    kept_numel_[size_t(stash_slot)][size_t(h.index)] = n;
  } else if (e.kind == Kind::Activation) {
    cpu::round_to_dtype(x, long(n), activation_dtype_);
  }
}

void SavedTensors::restore(int slot) const {
  for (size_t i = 0; i < entries_.size(); i++) {
    const Entry& e = entries_[i];
    if (!kept(e)) continue;
    stash_.get(slot, e.stash_id, working_->tensors[i].f32(), kept_numel_[size_t(slot)][i]);
  }
}

}  // namespace loom
