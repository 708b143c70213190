#include "loom/train/coca_optimizer_args.h"

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

namespace {

struct TowerFlags {
  const char* flag;   // Loom's spelling of the tower in flags
  const char* under;  // EVA-CLIP's
  std::optional<double> CocaOptimizerArgs::*lr;
  std::optional<double> CocaOptimizerArgs::*wd;
  std::optional<double> CocaOptimizerArgs::*ld;
};

const TowerFlags kTowers[] = {
    {"visual", "visual", &CocaOptimizerArgs::visual_lr, &CocaOptimizerArgs::visual_wd, &CocaOptimizerArgs::visual_ld},
    {"text", "text", &CocaOptimizerArgs::text_lr, &CocaOptimizerArgs::text_wd, &CocaOptimizerArgs::text_ld},
    {"text-decoder", "text_decoder", &CocaOptimizerArgs::text_decoder_lr, &CocaOptimizerArgs::text_decoder_wd,
     &CocaOptimizerArgs::text_decoder_ld},
};

bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

}  // namespace

void CocaOptimizerArgs::register_flags(ArgParser& p) {
  for (const TowerFlags& t : kTowers) {
    const std::string f = std::string("--") + t.flag, u = std::string("--") + t.under;
    p.add_opt_float(f + "-lr", &(this->*t.lr), std::string("CoCa (EVA-CLIP groups): the ") + t.under +
                                                   " tower's peak learning rate (default: --lr)");
    p.add_opt_float(f + "-wd", &(this->*t.wd), std::string("CoCa: the ") + t.under + " tower's weight decay (default: --weight-decay)");
    p.add_opt_float(f + "-ld", &(this->*t.ld),
                    std::string("CoCa: the ") + t.under + " tower's layer-wise lr decay, lr x ld^(depth+1-layer) (default: --ld)");
    for (const char* what : {"-lr", "-wd", "-ld"}) {
      // EVA-CLIP's spelling; --text-lr and --text_lr are the same flag.
      const std::string alias = u + "_" + (what + 1);
      if (alias != f + what) p.add_alias(alias, f + what);
    }
  }
  p.add_float("--ld", &ld, "CoCa: layer-wise lr decay of the towers without their own (1: none, as EVA-CLIP)");
  p.add_alias("--wd", "--weight-decay");
}

void CocaOptimizerArgs::check_tower_flags(const ArgParser& p, const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a.size() < 7 || a.compare(0, 2, "--") != 0) continue;
    const std::string flag = a.substr(0, a.find('='));
    if (p.has(flag)) continue;
    for (const char* what : {"lr", "wd", "ld"}) {
      for (const char sep : {'-', '_'}) {
        const std::string tail = std::string(1, sep) + what;
        if (!ends_with(flag, tail)) continue;
        const std::string tower = flag.substr(2, flag.size() - 2 - tail.size());
        fail(flag + ": unknown tower '" + tower + "' (the parameter-group towers are visual, text and text-decoder)");
      }
    }
  }
}

void CocaOptimizerArgs::validate() const {
  auto nonneg = [](const std::optional<double>& v, const std::string& flag) {
    require(!v || *v >= 0, flag + " must not be negative");
  };
  for (const TowerFlags& t : kTowers) {
    const std::string f = std::string("--") + t.flag;
    nonneg(this->*t.lr, f + "-lr");
    nonneg(this->*t.wd, f + "-wd");
    nonneg(this->*t.ld, f + "-ld");
    require(!(this->*t.ld) || *(this->*t.ld) <= 1.0, f + "-ld must be within [0, 1]");
  }
  require(ld > 0 && ld <= 1.0, "--ld must be within (0, 1]");
}

EvaClipGroupSettings CocaOptimizerArgs::settings(double lr, double weight_decay) const {
  EvaClipGroupSettings s;
  s.lr = lr;
  s.wd = weight_decay;
  s.ld = ld;
  s.visual_lr = visual_lr;
  s.visual_wd = visual_wd;
  s.visual_ld = visual_ld;
  s.text_lr = text_lr;
  s.text_wd = text_wd;
  s.text_ld = text_ld;
  s.text_decoder_lr = text_decoder_lr;
  s.text_decoder_wd = text_decoder_wd;
  s.text_decoder_ld = text_decoder_ld;
  return s;
}

}  // namespace loom
