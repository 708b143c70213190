#pragma once
// The optimizer over a model's ParamStore: AdamW (Megatron's default, apex FusedAdam in adam_w_mode),
// LAMB (apex FusedLAMB) or SGD with momentum (Megatron's --optimizer sgd: torch.optim.SGD), fp32 state
// (two moments, or SGD's one momentum buffer) laid out like the parameters; weight decay per parameter
// (Megatron: none on biases and norms).
// It updates the parameter slices the store says this rank owns (ParamStore::owned_slices): everything,
// or under ZeRO the r-th slice of every parameter, with the moments (and the fp32 main weights of a
// half-precision model) of those slices only; ZeRO-1/2 then all-gather the updated weights, ZeRO-3 keeps
// them sharded (Megatron's distributed optimizer, DeepSpeed ZeRO stages 1-3).
// Mixed precision (Megatron's Float16Optimizer): the stored model weights are bf16/fp16, the optimizer
// keeps fp32 main weights, updates them and stores their rounding after every step.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/tensor.h"
#include "loom/kernels/cpu/lamb.h"
#include "loom/layers/param_store.h"

namespace loom {

enum class OptimizerKind { AdamW, Lamb, Sgd };

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
  OptimizerKind kind = OptimizerKind::AdamW;
  // LAMB as DeepSpeed's FusedLamb (a DeepSpeed config's optimizer type Lamb) instead of apex FusedLAMB:
  // bias corrections in the step size, optional eps inside the square root, and the trust ratio of every
  // tensor clamped to [lamb_min_coeff, lamb_max_coeff] (kernels/cpu/lamb.h).
  bool lamb_deepspeed = false, lamb_bias_correction = true, lamb_eps_inside_sqrt = false;
  double lamb_max_coeff = 10.0, lamb_min_coeff = 0.01;
  // SGD (kernels/cpu/sgd.h): Megatron's --sgd-momentum; weight_decay is torch.optim.SGD's (added to the
  // gradient). The state is the momentum buffer alone (m; no v).
  double sgd_momentum = 0.9;
};

namespace dist {
class Communicator;
}
class OffloadedMoments;

class AdamW {
 public:
  // lamb_tensor_group: LAMB's per-tensor norms of tensor-parallel slices are summed over this group, so
  // the trust ratio is that of the whole tensor whatever the layout (null: none).
  AdamW(ParamStore& params, AdamWOptions opt, std::shared_ptr<dist::Communicator> lamb_tensor_group = nullptr);
  ~AdamW();
  // One update with learning rate lr; advances the step count. Gradients are read as
  // (stored x unscale) x clip_coeff, in that order (Megatron unscales, then clips, the main gradients).
  void step(double lr, float unscale = 1.0f, float clip_coeff = 1.0f);
  // step() in Megatron's two timed phases: the update of moments and main weights (fp32 weights in
  // place), then the rounded main weights stored into the model and, under ZeRO-1/2, all-gathered.
  // (AdamW, and offloaded state, store the rounded weights in the update's own pass: the second phase
  // only gathers.)
  void inner_step(double lr, float unscale = 1.0f, float clip_coeff = 1.0f);
  void copy_main_to_model();
  // Parameter groups (EVA-CLIP's, optim/param_groups.h): the group of every parameter and each group's
  // weight decay. A parameter's weight decay is then its group's (not options().weight_decay and
  // Param::weight_decay), and its learning rate in step() is lr x its group's lr (set_group_lrs, every
  // step before the update; 1.0 until then: pass lr = 1 to step() with the schedule's lrs here).
  void set_param_groups(std::vector<int> group_of_param, std::vector<double> group_weight_decay);
  void set_group_lrs(const std::vector<double>& lrs);
  bool has_param_groups() const { return !group_of_param_.empty(); }
  // DeepSpeed ZeRO-1/2 hands FusedLamb one flat fp32 partition per group and rank: each group's
  // parameters flattened in order, padded to a multiple of 2 x dp, cut into dp equal pieces. The LAMB
  // trust ratio (reference log 000's) is then that of each piece, not of each tensor. dp > 0 after
  // set_param_groups: norms and ratios per piece, whatever this run's own layout (0: per tensor).
  void set_trust_ratio_partitions(int dp);
  int64_t steps() const { return step_; }
  void set_steps(int64_t s) { step_ = s; }
  const AdamWOptions& options() const { return opt_; }
  bool sharded() const { return zero_ != nullptr; }
  // --offload-optimizer nvme: move the moments (and main weights) into a file under `dir`, streamed
  // through 3 blocks of `block_elements` during each step (AdamW and LAMB).
  void offload(const std::string& dir, int64_t block_elements);
  bool offloaded() const { return offload_ != nullptr; }
  // The full moments in the flat layout (collective over the ZeRO group when sharded), and back. SGD:
  // m is the momentum buffer, v stays empty (set_state ignores it; it may be null).
  void gather_state(std::vector<float>& m, std::vector<float>& v);
  void set_state(const float* m, const float* v);
  bool has_second_moment() const { return opt_.kind != OptimizerKind::Sgd; }

  bool has_main_weights() const { return main_.defined() || main_offloaded_; }
  // Mixed precision: (re)take the main weights from the model: from the fp32 views when they hold every
  // weight (ParamStore::acquire_full, e.g. just loaded from a checkpoint), else from the stored weights.
  void reset_main_weights();
  // The fp32 weights this optimizer updates (main weights, or the stored fp32 slices), in the flat
  // layout; collective over the ZeRO group when sharded.
  void gather_weights(std::vector<float>& w);

  // Resident bytes of the optimizer state: main weights and moments (the moments' 3 blocks when
  // offloaded).
  int64_t state_bytes() const;

 private:
  // State positions [lo, hi) with their moments (and main weights, or null) starting at position lo.
  struct Block {
    int64_t lo, hi;
    float *m, *v, *main;
  };
  // fn(segment, first element inside it, count, state position) over the owned slices intersected with
  // state positions [lo, hi).
  template <class F> void for_slices(int64_t lo, int64_t hi, F&& fn);
  // The fp32 gradients of n elements of slice s from element `at` of it: the stored ones, or scaled /
  // converted through the scratch buffer.
  const float* grads(const Segment& s, int64_t at, int64_t n, float unscale, float clip) const;
  float* weights(const Segment& s, int64_t at, float* main, int64_t base) const;
  // AdamW's update, or LAMB's first pass (moments and norms); then LAMB's norms and second pass.
  void update(double lr, float unscale, float clip, const Block& b);
  void reduce_lamb_norms();
  void lamb_apply(double lr, const Block& b);
  // The learning rate and weight decay of parameter p: its group's, or lr and the options' decay.
  double param_lr(double lr, int p) const {
    return group_of_param_.empty() ? lr : lr * group_lr_[size_t(group_of_param_[size_t(p)])];
  }
  float param_wd(int p) const;
  // fn(first, count, bucket) over elements [at, at + len) of parameter p cut where LAMB's norm buckets
  // (set_trust_ratio_partitions' pieces, else the parameter itself) change; first is relative to at.
  template <class F> void for_norm_buckets(int p, int64_t at, int64_t len, F&& fn) const;
  cpu::LambConfig lamb_config(double lr, int p) const;
  void store_rounded(const Block& b);
  // A shard-layout buffer of every rank (all-gathered when sharded) in the flat layout.
  void gather_to_flat(const float* mine, std::vector<float>& flat) const;
  // The offloaded moments (and main weights, when offloaded) of this rank's shard.
  void read_offloaded(std::vector<float>& m, std::vector<float>& v, std::vector<float>& w) const;

  ParamStore& params_;
  AdamWOptions opt_;
  std::shared_ptr<dist::Communicator> zero_, tensor_group_;
  std::vector<Segment> slices_;
  int64_t shard_numel_ = 0;
  Tensor m_, v_;      // [shard_numel]
  Tensor main_;       // fp32 main weights (half-precision storage only)
  Tensor scratch_;    // converted gradients, one chunk at a time
  std::vector<double> norms_;  // LAMB: per parameter sum(w^2), sum(u^2)
  std::vector<int> group_of_param_;          // empty: no parameter groups
  std::vector<double> group_wd_, group_lr_;  // per group
  int trust_partitions_ = 0;
  std::vector<int64_t> group_offset_;       // per parameter: its first element in its group's flattening
  std::vector<int64_t> piece_len_, piece_base_;  // per group: piece length, first bucket
  std::unique_ptr<OffloadedMoments> offload_;
  bool main_offloaded_ = false;  // the main weights are in the offload file too
  int64_t step_ = 0;
};

}  // namespace loom
