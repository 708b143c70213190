#pragma once
// EVA-CLIP's parameter groups for CoCa (optim/param_groups.h) with log 000's towers: visual, text,
// text_decoder with their own lr / weight decay / layer decay (falling back to --lr / --wd / --ld), and
// "other" (logit_scale) at --lr / --wd without layer decay.
#include <optional>
#include <vector>

#include "loom/models/coca/coca_config.h"
#include "loom/optim/param_groups.h"

namespace loom {

// EVA-CLIP's arguments: lr, wd, ld and the per-tower overrides (None: the base value).
struct EvaClipGroupSettings {
  double lr = 5e-4, wd = 0.05, ld = 1.0;
  std::optional<double> visual_lr, visual_wd, visual_ld;
  std::optional<double> text_lr, text_wd, text_ld;
  std::optional<double> text_decoder_lr, text_decoder_wd, text_decoder_ld;
};

// The four towers as EVA-CLIP resolves them: lr and wd from the tower's value when given, else the base
// (`args.visual_lr if args.visual_lr is not None else args.lr`); ld from the tower's when given and
// non-zero (`args.visual_ld if args.visual_ld else args.ld`). The skip names are the towers'
// no_weight_decay() as log 000 prints them.
std::vector<TowerGroupSpec> coca_group_towers(const CocaConfig& cfg, const EvaClipGroupSettings& s);

// coca_parameter_specs(cfg) as (name, shape), named_parameters() order.
std::vector<NamedShape> coca_named_shapes(const CocaConfig& cfg);

// The whole table: coca_named_shapes grouped by coca_group_towers.
ParamGroupTable coca_param_groups(const CocaConfig& cfg, const EvaClipGroupSettings& s);

}  // namespace loom
