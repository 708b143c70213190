#pragma once
// CoCa's contrastive loss: open_clip / EVA-CLIP ClipLoss(local_loss=True, gather_with_grad=True) over the
// data-parallel group, with the L2 normalisation of the two latents and the exp of the logit scale that
// the model's forward does before it.
//
// Per rank r (local batch b, R ranks, global batch N = R * b):
//   u = F.normalize(image_latent, eps 1e-12), v = F.normalize(text_latent), s = exp(logit_scale_param)
//   U, V = all-gather of every rank's u, v (rank order, N rows)
//   logits_i2t = s * u @ V^T, logits_t2i = s * v @ U^T        [b, N]
//   labels = arange(b) + r * b
//   loss_r = (CE(logits_i2t, labels) + CE(logits_t2i, labels)) / 2    (CE: mean over the b local rows)
// Every rank must pass the same b (the all-gather, like torch.distributed.nn's, needs equal shapes).
//
// Gradient convention (torch.distributed.nn.all_gather's): the backward of the gather SUMS over ranks the
// gradients every rank's loss sends to the gathered rows (here: one reduce-scatter of d[U | V]), so the
// gradient this rank returns for its latents is d(sum_r' loss_r') / d(local latents), and the logit-scale
// gradient is d(loss_r) / d(param). Since the one-process loss on the whole batch is L = mean_r loss_r,
// the data-parallel AVERAGE of the parameter gradients (what GradReducer does) then equals one process
// computing L on the global batch: each rank's latent gradient is R times the one-process gradient of its
// rows, and the average divides by R. Feed backward(grad_scale) the same factor as the other losses of
// the step (loss weight x loss scale / micro-batches); no extra 1/R or R is needed.
//
// The loss value is this rank's local loss_r, as EVA-CLIP prints it (rank 0's). The one-process loss of
// the global batch is the mean of loss_r over the ranks (train/rank_losses.h all-gathers them).
//
// Buffers are reserved for max_batch in the constructor: forward/backward do not allocate. Deterministic
// and independent of the thread count (fixed-grid GEMMs, rows reduced in a fixed order).
#include <cstdint>
#include <vector>

#include "loom/dist/communicator.h"

namespace loom {

struct ClipLossStats {
  float loss = 0;      // (loss_i2t + loss_t2i) / 2, this rank's rows
  float loss_i2t = 0;  // CE of logits_i2t, mean over the local rows
  float loss_t2i = 0;
  float i2t_acc = 0;   // EVA-CLIP's acc: fraction of local rows whose argmax (first maximum) is the label
  float t2i_acc = 0;
  float logit_scale = 0;  // exp(param), the value EVA-CLIP logs as "Logit Scale"
};

class ClipLoss {
 public:
  // dp: the data-parallel communicator; null means one process. embed_dim: E.
  ClipLoss(dist::Communicator* dp, int max_batch, int embed_dim);

  // image_latent, text_latent: [b, E] row-major, before normalisation; logit_scale_param: the
  // parameter (a log). Collective over dp (one all-gather).
  ClipLossStats forward(const float* image_latent, const float* text_latent, float logit_scale_param, int b);

  // After forward. d_image_latent, d_text_latent: [b, E], overwritten; d_logit_scale_param ACCUMULATES
  // (+=) as parameter gradients do. Every gradient is multiplied by grad_scale. Collective over dp (one
  // reduce-scatter, overlapped with the local GEMMs).
  void backward(float grad_scale, float* d_image_latent, float* d_text_latent, float* d_logit_scale_param);

  int max_batch() const { return max_batch_; }
  int embed_dim() const { return E_; }
  int world() const { return R_; }
  int rank() const { return rank_; }

  static constexpr float kNormEps = 1e-12f;  // F.normalize's default

 private:
  // Row-wise stable softmax of `logits` ([b, N]) in place, with the per-row CE against label
  // rank*b + i and whether the first maximum is the label.
  void softmax_ce(float* logits, int b, double* row_loss, uint8_t* row_hit) const;

  dist::Communicator* dp_;
  int R_, rank_, max_batch_, E_;
  int b_ = 0;          // local batch of the last forward
  float scale_ = 0;    // exp(param) of the last forward
  bool have_forward_ = false;
  // Rows are [u | v] (2E wide) so that one all-gather / reduce-scatter moves both latents, and U, V are
  // strided views (ld 2E) of the gathered rows.
  std::vector<float> local_;     // [max_batch, 2E] normalised local latents
  std::vector<float> norms_;     // [max_batch, 2] |x| of the raw image and text latents
  std::vector<float> gathered_;  // [R * max_batch, 2E] (unused when R == 1: local_ is the whole batch)
  std::vector<float> p_i2t_, p_t2i_;  // [max_batch, R * max_batch] logits, then softmax, then d logits
  std::vector<float> d_gathered_;     // [R * max_batch, 2E] this rank's gradient for every gathered row
  std::vector<float> d_reduced_;      // [max_batch, 2E] sum over ranks of d_gathered_'s local block
  std::vector<float> d_direct_;       // [max_batch, 2E] gradient through the local (non-gathered) operand
  std::vector<double> row_loss_;      // [2 * max_batch]
  std::vector<uint8_t> row_hit_;      // [2 * max_batch]
};

}  // namespace loom
