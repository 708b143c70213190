#pragma once
// EVA-CLIP's parameter-group flags (optim/coca_param_groups.h): per tower learning rate, weight decay and
// layer-wise lr decay, --<tower>-lr/-wd/-ld for the towers visual, text and text-decoder (EVA-CLIP's own
// spellings --visual_lr, ... as well), --ld the base layer decay; the base lr and weight decay are
// --lr and --weight-decay (EVA-CLIP's --wd is its alias here).
#include <optional>
#include <string>
#include <vector>

#include "loom/optim/coca_param_groups.h"

namespace loom {

class ArgParser;

struct CocaOptimizerArgs {
  std::optional<double> visual_lr, visual_wd, visual_ld;
  std::optional<double> text_lr, text_wd, text_ld;
  std::optional<double> text_decoder_lr, text_decoder_wd, text_decoder_ld;
  double ld = 1.0;

  // After --lr and --weight-decay are registered (--wd is made an alias of the latter).
  void register_flags(ArgParser& p);
  // Before parsing: a flag shaped like a group flag (--<tower>-lr|wd|ld, or with underscores) that names
  // no tower throws UserError naming the towers, rather than the parser's plain "unrecognized".
  static void check_tower_flags(const ArgParser& p, const std::vector<std::string>& args);
  // Throws UserError on a negative value or a layer decay above 1.
  void validate() const;
  // The settings EVA-CLIP resolves the towers from, with the run's base lr and weight decay.
  EvaClipGroupSettings settings(double lr, double weight_decay) const;
};

}  // namespace loom
