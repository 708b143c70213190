#include "loom/optim/coca_param_groups.h"

namespace loom {

std::vector<TowerGroupSpec> coca_group_towers(const CocaConfig& cfg, const EvaClipGroupSettings& s) {
  auto tower = [&](const char* name, const char* prefix, int layers, const std::optional<double>& lr,
                   const std::optional<double>& wd, const std::optional<double>& ld, const char* label) {
    TowerGroupSpec t;
    t.tower = name;
    t.prefix = prefix;
    t.num_layers = layers;
    t.lr = lr ? *lr : s.lr;
    t.weight_decay = wd ? *wd : s.wd;
    t.layer_decay = ld && *ld != 0.0 ? *ld : s.ld;  // Python truthiness: None and 0.0 fall back
    t.assigned_label = label;
    return t;
  };
  std::vector<TowerGroupSpec> towers;
  towers.push_back(tower("visual", "visual.", cfg.vision.layers, s.visual_lr, s.visual_wd, s.visual_ld, "visual"));
  // EVAVisionTransformer.no_weight_decay() = {'pos_embed', 'cls_token'}, in the order log 000's set printed.
  towers.back().skip = {"visual.pos_embed", "visual.cls_token"};
  towers.push_back(tower("text", "text.", cfg.text.layers, s.text_lr, s.text_wd, s.text_ld, "text"));
  towers.back().skip = {"text.positional_embedding"};
  towers.push_back(tower("text_decoder", "text_decoder.", cfg.decoder.layers, s.text_decoder_lr, s.text_decoder_wd,
                         s.text_decoder_ld, "text decoder"));
  // CoCa.no_weight_decay() = {'logit_scale'}, printed as the set itself (not prefixed into a list).
  TowerGroupSpec other;
  other.tower = "other";
  other.lr = s.lr;
  other.weight_decay = s.wd;
  other.skip = {"logit_scale"};
  other.skip_printed_as_set = true;
  towers.push_back(other);
  return towers;
}

std::vector<NamedShape> coca_named_shapes(const CocaConfig& cfg) {
  std::vector<NamedShape> out;
  for (const CocaParamSpec& p : coca_parameter_specs(cfg)) out.push_back({p.name, p.shape});
  return out;
}

ParamGroupTable coca_param_groups(const CocaConfig& cfg, const EvaClipGroupSettings& s) {
  return build_param_groups(coca_named_shapes(cfg), coca_group_towers(cfg, s));
}

}  // namespace loom
