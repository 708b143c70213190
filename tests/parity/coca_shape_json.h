#pragma once
// A CoCa shape and EVA-CLIP's group settings from the JSON keys of tests/parity/coca_reference.py's
// config dicts (SMALL, BENCH), so the parity driver (tests/parity/coca_model_driver.cpp) and the step
// benchmark (bench/coca_step_bench.cpp) build the same model as the PyTorch reference from one dict.
#include <nlohmann/json.hpp>
#include <optional>

#include "loom/models/coca/coca_config.h"
#include "loom/optim/coca_param_groups.h"

namespace loom::coca_json {

inline CocaConfig shape(const nlohmann::json& j) {
  CocaConfig c;
  c.vision.image_size = j.at("image_size");
  c.vision.patch_size = j.at("patch_size");
  c.vision.width = j.at("width");
  c.vision.layers = j.at("layers");
  c.vision.heads = j.at("heads");
  c.vision.mlp_hidden = j.at("mlp_hidden");
  c.vision.rope_pt_grid = j.at("rope_pt_grid");
  c.pooler.queries = j.at("pooler_queries");
  c.pooler.heads = j.at("pooler_heads");
  c.embed_dim = j.at("embed_dim");
  c.text.vocab_size = c.decoder.vocab_size = j.at("vocab");
  c.text.context_length = j.at("context");
  c.text.width = c.decoder.width = j.at("text_width");
  c.text.layers = j.at("text_layers");
  c.text.heads = j.at("text_heads");
  c.text.mlp_hidden = j.at("text_mlp");
  c.decoder.layers = j.at("decoder_layers");
  c.decoder.heads = j.at("decoder_heads");
  c.decoder.mlp_hidden = j.at("decoder_mlp");
  c.contrastive_loss_weight = j.at("contrastive_weight");
  c.caption_loss_weight = j.at("caption_weight");
  return c;
}

// "lr", "wd", "ld" and the optional per-tower "tower_lr" / "tower_wd" / "tower_ld" ({tower: value}).
inline EvaClipGroupSettings group_settings(const nlohmann::json& j) {
  EvaClipGroupSettings s;
  s.lr = j.at("lr");
  s.wd = j.at("wd");
  s.ld = j.at("ld");
  auto tower = [&](const char* key, const char* t) -> std::optional<double> {
    if (j.contains(key) && j[key].contains(t)) return j[key][t].get<double>();
    return std::nullopt;
  };
  s.visual_lr = tower("tower_lr", "visual");
  s.visual_wd = tower("tower_wd", "visual");
  s.visual_ld = tower("tower_ld", "visual");
  s.text_lr = tower("tower_lr", "text");
  s.text_wd = tower("tower_wd", "text");
  s.text_ld = tower("tower_ld", "text");
  s.text_decoder_lr = tower("tower_lr", "text_decoder");
  s.text_decoder_wd = tower("tower_wd", "text_decoder");
  s.text_decoder_ld = tower("tower_ld", "text_decoder");
  return s;
}

}  // namespace loom::coca_json
