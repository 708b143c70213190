#include "loom/models/coca/coca_model.h"

#include <algorithm>
#include <cmath>

#include "loom/dist/communicator.h"
#include "loom/eval/retrieval.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/optim/logit_scale_clamp.h"

namespace loom {

CocaModel::CocaModel(const CocaConfig& cfg, int max_batch, ParamStorage storage, int flat_multiple, bool recompute,
                     std::shared_ptr<dist::Communicator> dp)
    : cfg_(cfg), max_batch_(max_batch), dp_(std::move(dp)) {
  validate_coca_config(cfg_);
  store_.configure(std::move(storage));
  // Registration order = coca_parameter_specs' order: visual, text, text_decoder, logit_scale.
  vision_ = std::make_unique<EvaVisionTower>(cfg_, store_, max_batch, recompute);
  text_ = std::make_unique<ClipTextTower>(cfg_, store_, max_batch, recompute);
  decoder_ = std::make_unique<MultimodalDecoder>(cfg_, store_, max_batch, recompute);
  // PyTorch's logit_scale is 0-dimensional; the store slices parameters by rows (ZeRO), so it holds [1].
  logit_scale_ = store_.add("logit_scale", {1}, /*weight_decay=*/false);

  std::vector<std::vector<int>> units = vision_->units();
  text_->set_first_unit(int(units.size()));
  for (auto& u : text_->units()) units.push_back(u);
  decoder_->set_first_unit(int(units.size()));
  for (auto& u : decoder_->units()) units.push_back(u);
  logit_unit_ = int(units.size());
  units.push_back({logit_scale_});
  store_.finalize(flat_multiple, units);

  clip_loss_ = std::make_unique<ClipLoss>(dp_ && dp_->size() > 1 ? dp_.get() : nullptr, max_batch, cfg_.embed_dim);
  d_image_latent_.assign(size_t(max_batch) * size_t(cfg_.embed_dim), 0.f);
  d_text_latent_.assign(d_image_latent_.size(), 0.f);
}

CocaModel::~CocaModel() = default;

void CocaModel::init(uint64_t seed) {
  // Each tower draws from its own stream of the seed, so a tower's initial weights do not depend on the
  // shapes of the others.
  vision_->init_params(seed * 3 + 0);
  text_->init_params(seed * 3 + 1);
  decoder_->init_params(seed * 3 + 2);
  store_.acquire(logit_unit_, false);
  *store_.at(logit_scale_).value.f32() = float(cfg_.init_logit_scale);
  store_.commit(logit_unit_);
  store_.release(logit_unit_, false);
}

float CocaModel::logit_scale() const {
  ParamStore& s = const_cast<ParamStore&>(store_);
  s.acquire(logit_unit_, false);
  const float v = *s.at(logit_scale_).value.f32();
  s.release(logit_unit_, false);
  return std::exp(v);
}

void CocaModel::clamp_logit_scale() { loom::clamp_logit_scale(store_, logit_scale_); }

CocaLosses CocaModel::forward(const float* images, const int32_t* text, int B, float loss_scale) {
  CocaLosses out;
  vision_->forward(images, B);
  text_->forward(text, B);
  out.caption = decoder_->forward(text_->tokens(), text, vision_->tokens(), B, &out.caption_targets,
                                  loss_scale * cfg_.caption_loss_weight);
  store_.acquire(logit_unit_, false);
  const float logit_param = *store_.at(logit_scale_).value.f32();
  store_.release(logit_unit_, false);
  out.contrastive = clip_loss_->forward(vision_->latent(), text_->latent(), logit_param, B).loss;
  return out;
}

void CocaModel::backward(float loss_scale) {
  store_.acquire(logit_unit_, true);
  clip_loss_->backward(loss_scale * cfg_.contrastive_loss_weight, d_image_latent_.data(), d_text_latent_.data(),
                       store_.at(logit_scale_).grad.f32());
  store_.release(logit_unit_, true);
  decoder_->backward(loss_scale * cfg_.caption_loss_weight);
  text_->backward(d_text_latent_.data(), decoder_->d_text_tokens());
  vision_->backward(d_image_latent_.data(), decoder_->d_image_tokens());
}

void CocaModel::encode(const float* images, const int32_t* text, int B, float* image_embedding, float* text_embedding) {
  const int E = cfg_.embed_dim;
  if (images) {
    vision_->forward(images, B);
    eval::l2_normalize_rows(vision_->latent(), image_embedding, B, E);
  }
  if (text) {
    text_->forward(text, B);
    eval::l2_normalize_rows(text_->latent(), text_embedding, B, E);
  }
}

}  // namespace loom
