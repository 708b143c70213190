#pragma once
// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning") as apex FusedLAMB with
// adam_w_mode=True and bias correction, without apex's internal global-norm clipping (the caller clips
// the gradients beforehand):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   u = (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * w
//   r = ||w|| / ||u|| per parameter tensor, or 1 if either norm is 0
//   w -= lr * r * u
// step is t, counted from 1.
//
// The trust ratio needs the norms of the whole tensor before any of it can be updated, and a tensor may
// be split across ranks (ZeRO shards) or streamed from disk in blocks, so the step is two passes over
// arbitrary element ranges of one tensor:
//   double w_sq = 0, u_sq = 0;
//   for each range: lamb_phase1(w, g, m, v, n, c, &w_sq, &u_sq);   // m, v updated; norms summed
//   (all-reduce w_sq and u_sq over the ranks that hold parts of the tensor)
//   const float r = lamb_trust_ratio(w_sq, u_sq);
//   for each range: lamb_phase2(w, m, v, n, c, r);                 // w updated
// Phase 2 recomputes u from the updated m, v and the not yet updated w instead of storing it (one fewer
// tensor to keep or stream), with exactly the arithmetic of phase 1: an element's u, and so its new
// weight, is bitwise the same however the tensor is split into ranges and for any thread count.
//
// apex applies the trust ratio to every tensor only with use_nvlamb=True; its default (False) uses
// r = 1 for parameters whose weight decay is 0 (biases and norms in Megatron's groups). That choice is
// the caller's: pass 1.0f to lamb_phase2 instead of lamb_trust_ratio(...) for such parameters.
//
// DeepSpeed's FusedLamb (deepspeed/ops/lamb, csrc/lamb/fused_lamb_cuda_kernel.cu; deepspeed = true)
// differs: the bias corrections go into the step size instead of u, eps may sit inside the square root,
// and the trust ratio is clamped and applied to every tensor:
//   u = m / (sqrt(v) + eps) + wd * w          (eps_inside_sqrt: m / sqrt(v + eps) + wd * w)
//   step_size = lr * sqrt(1-b2^t) / (1-b1^t)  (lr without bias_correction), all in fp32
//   r = clamp(||w|| / ||u||, min_coeff, max_coeff), or 1 if either norm is 0
//   w -= (step_size * r) * u
// Vectorised and threaded over n.
namespace loom::cpu {

struct LambConfig {
  float lr, beta1, beta2, eps, weight_decay;
  long step;  // >= 1
  bool deepspeed = false;  // DeepSpeed FusedLamb's arithmetic (below); false: apex FusedLAMB's
  bool bias_correction = true, eps_inside_sqrt = false;  // DeepSpeed only
};

// DeepSpeed FusedLamb's fp32 step size lr * sqrt(1-b2^t) / (1-b1^t) (lr without bias correction).
float deepspeed_lamb_step_size(const LambConfig& c);

// Updates m and v in place for n elements and ADDS sum(w^2) and sum(u^2) over them to *w_sq and *u_sq.
// The sums are formed in double over fixed blocks of the range added in order, so they do not depend
// on the number of threads (they do depend, in the last bits, on how a tensor is split into ranges).
void lamb_phase1(const float* w, const float* g, float* m, float* v, long n, const LambConfig& c, double* w_sq,
                 double* u_sq);

// w -= (lr * ratio) * u for n elements (DeepSpeed: (step_size * ratio) * u), u recomputed from m, v (as left by lamb_phase1) and w exactly as
// lamb_phase1 computed it. c must be the config given to lamb_phase1.
void lamb_phase2(float* w, const float* m, const float* v, long n, const LambConfig& c, float ratio);

// sqrt(w_sq) / sqrt(u_sq) rounded to fp32, or 1 if either sum is not > 0 (as apex and the paper).
float lamb_trust_ratio(double w_sq, double u_sq);
// DeepSpeed's: the same ratio clamped to [min_coeff, max_coeff] (still 1 if either norm is 0).
float lamb_trust_ratio_clamped(double w_sq, double u_sq, float min_coeff, float max_coeff);

}  // namespace loom::cpu
