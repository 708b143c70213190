#pragma once
// The tensors one block saves for its backward, declared once by the sublayer that produces them.
//
// A declaration says how large a tensor is, whether it is an activation (stored in the activation type)
// or a statistic (kept in fp32), and under which recompute modes it is kept per micro-batch. From that
// one declaration the set allocates per-slot fp32 tensors (fp32 activations), or a stash entry per slot
// plus one fp32 working tensor shared by every block (half-precision activations, or a tensor that is
// rebuilt before the backward instead of kept). Adding a saved tensor is one add() in its sublayer, one
// keep() where it is produced, and its uses.
#include <cstdint>
#include <memory>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/layers/activation_stash.h"

namespace loom {

// Activation recompute (Megatron's --recompute-granularity): full keeps only the block's input and
// re-runs its forward (same dropout streams, so bit-identical) just before the backward; selective keeps
// everything but the attention's core (its output and log-sum-exp), recomputed from the saved QKV.
enum class Recompute { None, Selective, Full };

// The fp32 working tensors that blocks share (one block computes at a time), by declaration index.
struct SharedWorkingSet {
  std::vector<Tensor> tensors;
};

class SavedTensors {
 public:
  enum class Kind { Activation, Statistic };
  // When a tensor is kept per micro-batch slot; otherwise it lives in the shared working set and is
  // rebuilt (or is scratch that the backward does not read).
  enum class Keep { Always, UnlessFull, Never, WithoutRecompute };
  struct Handle {
    int index = -1;
  };

  SavedTensors() = default;
  SavedTensors(Recompute recompute, DType activation_dtype, std::shared_ptr<SharedWorkingSet> working);

  // Declares a tensor of up to `numel` elements (a sublayer whose output doubles as a later input, e.g. a
  // norm output without sequence parallelism, passes the same handle for both).
  Handle add(int64_t numel, Kind kind, Keep keep);
  // Allocates per-slot storage (fp32 tensors, or the half-precision stash) and the shared working set.
  void allocate(int slots);

  // The fp32 tensor to compute `h` into (or read it from) for micro-batch slot `slot`: per-slot storage
  // when it is kept in fp32, else the shared working tensor.
  Tensor at(Handle h, int slot) const;
  // Called where `h` is produced, at x (what at() returned): rounds its n elements to the activation type
  // (statistics stay fp32) and, with half-precision storage, keeps them in the stash of `stash_slot`
  // (training; -1: only round, as evaluation and a full-recompute forward do).
  void keep(Handle h, float* x, int64_t n, int stash_slot) const;
  // Half precision: widens every tensor kept for `slot` back into the working set before the backward.
  void restore(int slot) const;
  bool kept(Handle h) const { return kept(entries_[size_t(h.index)]); }
  bool half() const { return activation_dtype_ != DType::F32; }

 private:
  struct Entry {
    int64_t numel;
    Kind kind;
    Keep keep;
    int stash_id = -1;
  };
  bool kept(const Entry& e) const;
  Recompute recompute_ = Recompute::None;
  DType activation_dtype_ = DType::F32;
  std::shared_ptr<SharedWorkingSet> working_;
  std::vector<Entry> entries_;
  std::vector<std::vector<Tensor>> per_slot_;  // fp32: [slot][entry]
  mutable ActivationStash stash_;              // half precision
  mutable std::vector<std::vector<int64_t>> kept_numel_;  // [slot][entry]: what keep() stored
};

}  // namespace loom
