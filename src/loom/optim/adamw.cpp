#include "loom/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/adamw.h"
#include "loom/kernels/cpu/lamb.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/kernels/cpu/sgd.h"
#include "loom/optim/offload.h"

namespace loom {

namespace {
constexpr int64_t kScratch = 1 << 18;  // gradients converted per chunk (1 MB: threaded conversion, L2-sized)
}

AdamW::AdamW(ParamStore& params, AdamWOptions opt, std::shared_ptr<dist::Communicator> lamb_tensor_group)
    : params_(params), opt_(opt), zero_(params.storage().zero_group), tensor_group_(std::move(lamb_tensor_group)) {
  if (zero_ && zero_->size() == 1) zero_ = nullptr;
  slices_ = params.owned_slices();
  shard_numel_ = params.shard_numel();
  m_ = Tensor({shard_numel_});
  if (has_second_moment()) v_ = Tensor({shard_numel_});
  if (params.storage().weights != DType::F32) main_ = Tensor({shard_numel_});
  scratch_ = Tensor({kScratch});
  norms_.assign(2 * params.all().size(), 0.0);
}

AdamW::~AdamW() = default;

void AdamW::set_param_groups(std::vector<int> group_of_param, std::vector<double> group_weight_decay) {
  if (group_of_param.size() != params_.all().size())
    throw std::logic_error("set_param_groups: " + std::to_string(group_of_param.size()) + " groups for " +
                           std::to_string(params_.all().size()) + " parameters");
  for (int g : group_of_param)
    if (g < 0 || size_t(g) >= group_weight_decay.size()) throw std::logic_error("set_param_groups: bad group index");
  group_of_param_ = std::move(group_of_param);
  group_wd_ = std::move(group_weight_decay);
  group_lr_.assign(group_wd_.size(), 1.0);
}

void AdamW::set_group_lrs(const std::vector<double>& lrs) {
  if (lrs.size() != group_lr_.size()) throw std::logic_error("set_group_lrs: wrong number of groups");
  std::copy(lrs.begin(), lrs.end(), group_lr_.begin());  // same size: no allocation in the step
}

void AdamW::set_trust_ratio_partitions(int dp) {
  if (group_of_param_.empty() || dp <= 0) throw std::logic_error("set_trust_ratio_partitions needs parameter groups and dp > 0");
  if (tensor_group_ && tensor_group_->size() > 1) throw std::logic_error("set_trust_ratio_partitions with tensor parallelism");
  const size_t G = group_wd_.size();
  std::vector<int64_t> numel(G, 0);
  group_offset_.assign(params_.all().size(), 0);
  for (size_t p = 0; p < group_of_param_.size(); p++) {
    const size_t g = size_t(group_of_param_[p]);
    group_offset_[p] = numel[g];
    numel[g] += params_.at(int(p)).numel();
  }
  piece_len_.assign(G, 0);
  piece_base_.assign(G, 0);
  int64_t buckets = 0;
  for (size_t g = 0; g < G; g++) {
    const int64_t align = 2 * int64_t(dp);  // DeepSpeed's nccl_start_alignment_factor 2 x dp
    piece_len_[g] = (numel[g] + align - 1) / align * align / dp;
    piece_base_[g] = buckets;
    buckets += dp;
  }
  trust_partitions_ = dp;
  norms_.assign(2 * std::max<size_t>(params_.all().size(), size_t(buckets)), 0.0);
}

template <class F>
void AdamW::for_norm_buckets(int p, int64_t at, int64_t len, F&& fn) const {
  if (trust_partitions_ == 0) {
    fn(int64_t(0), len, int64_t(p));
    return;
  }
  const size_t g = size_t(group_of_param_[size_t(p)]);
  const int64_t piece = piece_len_[g];
  for (int64_t k = 0; k < len;) {
    const int64_t o = group_offset_[size_t(p)] + at + k;  // position in the group's flattening
    const int64_t n = std::min(len - k, piece - o % piece);
    fn(k, n, piece_base_[g] + o / piece);
    k += n;
  }
}

float AdamW::param_wd(int p) const {
  if (!group_of_param_.empty()) return float(group_wd_[size_t(group_of_param_[size_t(p)])]);
  return params_.at(p).weight_decay ? float(opt_.weight_decay) : 0.f;
}

cpu::LambConfig AdamW::lamb_config(double lr, int p) const {
  cpu::LambConfig c{float(param_lr(lr, p)), float(opt_.beta1), float(opt_.beta2), float(opt_.eps), param_wd(p), long(step_)};
  c.deepspeed = opt_.lamb_deepspeed;
  c.bias_correction = opt_.lamb_bias_correction;
  c.eps_inside_sqrt = opt_.lamb_eps_inside_sqrt;
  return c;
}

void AdamW::offload(const std::string& dir, int64_t block_elements) {
  if (!has_second_moment()) throw std::logic_error("offload: the SGD optimizer's state is not offloaded");
  const bool with_main = main_.defined();
  offload_ = std::make_unique<OffloadedMoments>(dir, shard_numel_, block_elements, with_main);
  offload_->write(m_.f32(), v_.f32(), with_main ? main_.f32() : nullptr);
  m_ = Tensor();  // the state now lives only in the file
  v_ = Tensor();
  main_ = Tensor();
  main_offloaded_ = with_main;
}

int64_t AdamW::state_bytes() const {
  const int64_t moments = offload_ ? 2 * 3 * offload_->block() * 4 : int64_t(m_.nbytes() + v_.nbytes());
  const int64_t main = main_offloaded_ ? 3 * offload_->block() * 4 : int64_t(main_.nbytes());
  return moments + main;
}

template <class F>
void AdamW::for_slices(int64_t lo, int64_t hi, F&& fn) {
  for (const Segment& s : slices_) {
    const int64_t b = std::max(s.pos, lo), e = std::min(s.pos + s.count, hi);
    if (b < e) fn(s, b - s.pos, e - b, b);
  }
}

float* AdamW::weights(const Segment& s, int64_t at, float* main, int64_t base) const {
  if (main) return main + (s.pos + at - base);
  return static_cast<float*>(params_.weight_data(s)) + at;  // fp32 storage: updated in place
}

const float* AdamW::grads(const Segment& s, int64_t at, int64_t n, float unscale, float clip) const {
  // fp32 gradients are read in place (inner_step unscaled and clipped them already, or AdamW's kernel
  // does as it reads them); half-precision
  // ones are widened, unscaled and clipped a scratch chunk at a time.
  const DType gt = params_.storage().grads;
  const char* stored = static_cast<const char*>(params_.grad_data(s)) + size_t(at) * dtype_size(gt);
  if (gt == DType::F32) return reinterpret_cast<const float*>(stored);
  float* g = scratch_.f32();
  cpu::to_f32(stored, gt, g, long(n));
  if (unscale != 1.0f) cpu::scale_inplace(g, long(n), unscale);
  if (clip != 1.0f) cpu::scale_inplace(g, long(n), clip);
  return g;
}

void AdamW::reset_main_weights() {
  if (main_offloaded_) throw std::logic_error("reset_main_weights after offload");
  if (!main_.defined()) return;
  for (const Segment& s : slices_) {
    const Param& p = params_.at(s.param);
    if (p.value.defined() && p.value.numel() == p.numel() && params_.has_full_values())
      std::memcpy(main_.f32() + s.pos, p.value.f32() + s.begin, sizeof(float) * size_t(s.count));
    else
      cpu::to_f32(params_.weight_data(s), params_.storage().weights, main_.f32() + s.pos, long(s.count));
  }
}

void AdamW::gather_to_flat(const float* mine, std::vector<float>& flat) const {
  // Every rank's shard buffer, then each rank's slices placed at their parameters' flat offsets.
  const int D = zero_ ? zero_->size() : 1;
  std::vector<float> all(size_t(shard_numel_) * size_t(D));
  if (zero_) zero_->all_gather(mine, all.data(), size_t(shard_numel_));
  else std::memcpy(all.data(), mine, sizeof(float) * size_t(shard_numel_));
  flat.assign(size_t(params_.numel()), 0.f);
  for (int q = 0; q < D; q++)
    for (const Segment& s : params_.owned_slices(q))
      std::memcpy(flat.data() + params_.at(s.param).offset + s.begin, all.data() + size_t(q) * size_t(shard_numel_) + s.pos,
                  sizeof(float) * size_t(s.count));
}

void AdamW::read_offloaded(std::vector<float>& m, std::vector<float>& v, std::vector<float>& w) const {
  m.resize(size_t(shard_numel_));
  v.resize(size_t(shard_numel_));
  w.resize(main_offloaded_ ? size_t(shard_numel_) : 0);
  offload_->read(m.data(), v.data(), main_offloaded_ ? w.data() : nullptr);
}

void AdamW::gather_weights(std::vector<float>& w) {
  std::vector<float> mine(size_t(shard_numel_), 0.f), om, ov, ow;
  const float* main = main_.defined() ? main_.f32() : nullptr;
  if (main_offloaded_) {
    read_offloaded(om, ov, ow);
    main = ow.data();
  }
  for (const Segment& s : slices_) {
    if (main)
      std::memcpy(mine.data() + s.pos, main + s.pos, sizeof(float) * size_t(s.count));
    else
      cpu::to_f32(params_.weight_data(s), params_.storage().weights, mine.data() + s.pos, long(s.count));
  }
  gather_to_flat(mine.data(), w);
}

void AdamW::gather_state(std::vector<float>& m, std::vector<float>& v) {
  std::vector<float> om, ov, ow;  // offloaded: the shard read back from the file
  if (offload_) read_offloaded(om, ov, ow);
  gather_to_flat(offload_ ? om.data() : m_.f32(), m);
  if (has_second_moment()) gather_to_flat(offload_ ? ov.data() : v_.f32(), v);
  else v.clear();
}

void AdamW::step(double lr, float unscale, float clip) {
  inner_step(lr, unscale, clip);
  copy_main_to_model();
}

void AdamW::inner_step(double lr, float unscale, float clip) {
  step_++;
  if (params_.storage().grads == DType::F32 && (unscale != 1.0f || clip != 1.0f) &&
      opt_.kind != OptimizerKind::AdamW) {
    // fp32 gradients: unscaled and clipped in place (as Megatron's main gradients), one threaded pass
    // each, so the update reads them directly. AdamW's kernel applies the same two multiplications as
    // it reads each gradient (the same bits, two passes fewer).
    for (const Segment& s : slices_) {
      float* g = static_cast<float*>(params_.grad_data(s));
      if (unscale != 1.0f) cpu::scale_inplace(g, long(s.count), unscale);
      if (clip != 1.0f) cpu::scale_inplace(g, long(s.count), clip);
    }
    unscale = clip = 1.0f;
  }
  if (offload_) {
    // One block of moments (and main weights) at a time, streamed from and back to the file; each
    // block's rounded main weights go to the model while the block is resident.
    offload_->for_each_block([&](int64_t first, int64_t count, float* m, float* v, float* w) {
      const Block b{first, first + count, m, v, main_offloaded_ ? w : nullptr};
      update(lr, unscale, clip, b);  // AdamW stores the block's rounded weights as it updates them
    });
    if (opt_.kind == OptimizerKind::Lamb) {
      reduce_lamb_norms();
      offload_->for_each_block([&](int64_t first, int64_t count, float* m, float* v, float* w) {
        const Block b{first, first + count, m, v, main_offloaded_ ? w : nullptr};
        lamb_apply(lr, b);
        store_rounded(b);
      });
    }
  } else {
    const Block all{0, shard_numel_, m_.f32(), v_.defined() ? v_.f32() : nullptr, main_.defined() ? main_.f32() : nullptr};
    update(lr, unscale, clip, all);
    if (opt_.kind == OptimizerKind::Lamb) {
      reduce_lamb_norms();
      lamb_apply(lr, all);
    }
  }
}

void AdamW::copy_main_to_model() {
  // AdamW's update stored the rounded weights as it went; SGD and LAMB (whose second pass scales the
  // update by the trust ratio) store them here.
  if (!offload_ && main_.defined() && opt_.kind != OptimizerKind::AdamW)
    store_rounded({0, shard_numel_, nullptr, nullptr, main_.f32()});
  // ZeRO-1/2: every rank updated its slices; all-gather the rest (ZeRO-3 keeps its slices only).
  params_.all_gather_weights();
}

void AdamW::store_rounded(const Block& b) {
  // Mixed precision: the model gets the rounded main weights.
  if (!b.main) return;
  const DType wt = params_.storage().weights;
  for_slices(b.lo, b.hi, [&](const Segment& s, int64_t at, int64_t n, int64_t pos) {
    cpu::from_f32(b.main + (pos - b.lo), static_cast<char*>(params_.weight_data(s)) + size_t(at) * dtype_size(wt), wt,
                  long(n));
  });
}

void AdamW::update(double lr, float unscale, float clip, const Block& b) {
  const bool lamb = opt_.kind == OptimizerKind::Lamb;
  if (lamb && b.lo == 0) std::fill(norms_.begin(), norms_.end(), 0.0);
  for_slices(b.lo, b.hi, [&](const Segment& s, int64_t at, int64_t n, int64_t pos) {
    const float wd = param_wd(s.param);
    // Gradients read in place need no chunking (one threaded pass per slice); converted ones go
    // through the scratch a chunk at a time.
    const int64_t chunk = params_.storage().grads == DType::F32 ? n : kScratch;
    for (int64_t k = 0; k < n; k += chunk) {
      const int64_t len = std::min(chunk, n - k);
      float* w = weights(s, at + k, b.main, b.lo);
      const float* g = grads(s, at + k, len, unscale, clip);
      float* m = b.m + (pos + k - b.lo);
      float* v = b.v ? b.v + (pos + k - b.lo) : nullptr;
      if (opt_.kind == OptimizerKind::Sgd) {
        // torch.optim.SGD: no buffer before the first update (step_ counts updates, restored on resume).
        const cpu::SgdConfig c{float(param_lr(lr, s.param)), float(opt_.sgd_momentum), wd, step_ == 1};
        cpu::sgd_step(w, g, m, long(len), c);
      } else if (lamb) {
        // Pass 1: moments, and each tensor's (or piece's) sum(w^2), sum(u^2) over the slices this rank holds.
        const cpu::LambConfig c = lamb_config(lr, s.param);
        for_norm_buckets(s.param, s.begin + at + k, len, [&](int64_t o, int64_t l, int64_t bucket) {
          cpu::lamb_phase1(w + o, g + o, m + o, v + o, long(l), c, &norms_[2 * size_t(bucket)], &norms_[2 * size_t(bucket) + 1]);
        });
      } else {
        cpu::AdamWConfig c{float(param_lr(lr, s.param)), float(opt_.beta1), float(opt_.beta2), float(opt_.eps), wd,
                           long(step_)};
        if (params_.storage().grads == DType::F32) c.grad_unscale = unscale, c.grad_clip = clip;  // read in place
        // Mixed precision: the model's rounded copy of the main weights, written in the same pass.
        const DType wt = params_.storage().weights;
        void* rounded = b.main ? static_cast<char*>(params_.weight_data(s)) + size_t(at + k) * dtype_size(wt) : nullptr;
        cpu::adamw_step(w, g, m, v, long(len), c, rounded, wt);
      }
    }
  });
}

void AdamW::reduce_lamb_norms() {
  // Whole-tensor norms: summed over the ZeRO slices, and over tensor-parallel slices of split tensors
  // (replicated tensors count once: only tensor-parallel rank 0 contributes them).
  if (zero_) zero_->all_reduce(norms_.data(), norms_.size());
  if (tensor_group_ && tensor_group_->size() > 1) {
    if (tensor_group_->rank() != 0)
      for (size_t i = 0; i < params_.all().size(); i++)
        if (params_.at(int(i)).tp_replicated()) norms_[2 * i] = norms_[2 * i + 1] = 0.0;
    tensor_group_->all_reduce(norms_.data(), norms_.size());
  }
}

void AdamW::lamb_apply(double lr, const Block& b) {
  for_slices(b.lo, b.hi, [&](const Segment& s, int64_t at, int64_t n, int64_t pos) {
    const cpu::LambConfig c = lamb_config(lr, s.param);
    float* w = weights(s, at, b.main, b.lo);
    float *m = b.m + (pos - b.lo), *v = b.v + (pos - b.lo);
    for_norm_buckets(s.param, s.begin + at, n, [&](int64_t o, int64_t l, int64_t bucket) {
      const double w_sq = norms_[2 * size_t(bucket)], u_sq = norms_[2 * size_t(bucket) + 1];
      // apex FusedLAMB's default (use_nvlamb=False): no trust ratio for parameters without weight decay.
      // DeepSpeed FusedLamb: every tensor's (piece's), clamped.
      const float r = c.deepspeed ? cpu::lamb_trust_ratio_clamped(w_sq, u_sq, float(opt_.lamb_min_coeff),
                                                                  float(opt_.lamb_max_coeff))
                      : c.weight_decay != 0.f ? cpu::lamb_trust_ratio(w_sq, u_sq)
                                              : 1.0f;
      cpu::lamb_phase2(w + o, m + o, v + o, long(l), c, r);
    });
  });
}

void AdamW::set_state(const float* m, const float* v) {
  const bool with_v = has_second_moment();
  std::vector<float> sm(size_t(shard_numel_), 0.f), sv(with_v ? sm.size() : 0, 0.f);
  for (const Segment& s : slices_) {
    const size_t from = size_t(params_.at(s.param).offset + s.begin);
    std::memcpy(sm.data() + s.pos, m + from, sizeof(float) * size_t(s.count));
    if (with_v) std::memcpy(sv.data() + s.pos, v + from, sizeof(float) * size_t(s.count));
  }
  if (offload_) {
    std::vector<float> om, ov, ow;  // keep the offloaded main weights
    read_offloaded(om, ov, ow);
    offload_->write(sm.data(), sv.data(), main_offloaded_ ? ow.data() : nullptr);
    return;
  }
  std::memcpy(m_.f32(), sm.data(), sizeof(float) * sm.size());
  if (with_v) std::memcpy(v_.f32(), sv.data(), sizeof(float) * sv.size());
}

}  // namespace loom
