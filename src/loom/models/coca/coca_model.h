#pragma once
// CoCa as open_clip's CoCa.forward and CoCaLoss compute it (reference log 000), composed of its parts:
//
//   EvaVisionTower(images)       -> image latent [B, E], image tokens [B*Q, E]
//   ClipTextTower(text ids)      -> text latent [B, E], text tokens [B*ctx, W]
//   MultimodalDecoder(text tokens, ids, image tokens) -> caption loss (teacher forcing, pad ignored)
//   ClipLoss(image latent, text latent, logit_scale) -> contrastive loss over the data-parallel batch
//   objective = contrastive_weight x contrastive + caption_weight x caption
//
// The model owns one ParamStore with every parameter in open_clip's names (visual.*, text.*,
// text_decoder.*, logit_scale) and its storage units: the towers' own (embeddings, one per block, head)
// in that order, then logit_scale's. Gradients of loss_scale x objective accumulate into the store; the
// data-parallel average (or ZeRO-2's reduce-scatter in the store) makes them the gradients of one process
// on the global batch (see clip_loss.h for the contrastive term; the caption term is each rank's mean over
// its own targets, averaged over ranks, as open_clip under DDP).
#include <cstdint>
#include <memory>
#include <vector>

#include "loom/layers/param_store.h"
#include "loom/models/coca/clip_loss.h"
#include "loom/models/coca/clip_text.h"
#include "loom/models/coca/coca_config.h"
#include "loom/models/coca/eva_vision.h"
#include "loom/models/coca/multimodal_decoder.h"

namespace loom {

namespace dist {
class Communicator;
}

struct CocaLosses {
  double contrastive = 0;  // this rank's local ClipLoss (unweighted)
  double caption = 0;      // this rank's mean caption cross-entropy (unweighted)
  int64_t caption_targets = 0;
  double total(const CocaConfig& c) const {
    return c.contrastive_loss_weight * contrastive + c.caption_loss_weight * caption;
  }
};

class CocaModel {
 public:
  // dp: the data-parallel group the contrastive loss gathers over (null: one process). recompute: full
  // activation recompute per block in every tower (EVA-CLIP's --grad-checkpointing). flat_multiple: as
  // ParamStore::finalize (16 x the ZeRO group's size under ZeRO).
  CocaModel(const CocaConfig& cfg, int max_batch, ParamStorage storage, int flat_multiple, bool recompute,
            std::shared_ptr<dist::Communicator> dp);
  ~CocaModel();

  const CocaConfig& config() const { return cfg_; }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  int max_batch() const { return max_batch_; }
  int logit_scale_param() const { return logit_scale_; }

  // Every tower's initialisation (open_clip / EVA-CLIP's), logit_scale = ln(1 / 0.07).
  void init(uint64_t seed);

  // images [B, 3, S, S] normalised, text [B, ctx] ids (collective over dp: the contrastive gather).
  // loss_scale != 0: the scale the backward will be given, known in advance (training); the caption head
  // then forms its gradients in the forward from the logits it computed for the loss (the same bits),
  // instead of computing the vocabulary-wide logits GEMM again in the backward. 0: evaluation, or a
  // backward scale not known yet.
  CocaLosses forward(const float* images, const int32_t* text, int B, float loss_scale = 0.f);
  // After forward(): the gradients of loss_scale x objective accumulate into the store's gradients
  // (collective over dp; under ZeRO-2 the store reduce-scatters each unit's gradients as it finishes).
  // A forward given a loss_scale takes the same one here.
  void backward(float loss_scale);

  // L2-normalised contrastive embeddings for evaluation (one process's rows, no gathering): [B, E] each;
  // either input may be null.
  void encode(const float* images, const int32_t* text, int B, float* image_embedding, float* text_embedding);

  // exp(logit_scale), the value EVA-CLIP logs as "Logit Scale".
  float logit_scale() const;
  // EVA-CLIP clamps logit_scale to [0, ln 100] after every optimizer step.
  void clamp_logit_scale();

 private:
  CocaConfig cfg_;
  int max_batch_;
  ParamStore store_;
  std::unique_ptr<EvaVisionTower> vision_;
  std::unique_ptr<ClipTextTower> text_;
  std::unique_ptr<MultimodalDecoder> decoder_;
  std::shared_ptr<dist::Communicator> dp_;
  std::unique_ptr<ClipLoss> clip_loss_;
  int logit_scale_ = -1, logit_unit_ = -1;
  std::vector<float> d_image_latent_, d_text_latent_;
};

}  // namespace loom
