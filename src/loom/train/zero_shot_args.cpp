#include "loom/train/zero_shot_args.h"

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

void ZeroShotArgs::register_flags(ArgParser& p) {
  p.add_int("--zeroshot-frequency", &frequency,
            "zero-shot classification every N epochs and after the last (default 0: none; needs --zeroshot-classes)");
  p.add_string("--zeroshot-classes", &classes,
               "zero-shot class names: JSON {\"classes\": [...], \"templates\": [...], \"label_key\": ...} (loom "
               "make-images' classes.json) or one name per line (then OpenAI's 80 ImageNet templates)");
  p.add_string("--zeroshot-data", &data, "zero-shot images: an image index whose entries carry a class label (default: --val-data)");
  p.add_string("--zeroshot-label-key", &label_key,
               "the label's JSON key / CSV column: a class name or a class index (default: the classes file's "
               "label_key, else label)");
}

void ZeroShotArgs::validate(const std::string& val_data) const {
  if (frequency < 0) fail("--zeroshot-frequency must not be negative (got " + std::to_string(frequency) + ")");
  if (!enabled()) {
    if (!classes.empty() || !data.empty() || !label_key.empty())
      fail("--zeroshot-classes/--zeroshot-data/--zeroshot-label-key need --zeroshot-frequency N (epochs between "
           "zero-shot evaluations)");
    return;
  }
  if (classes.empty())
    fail("--zeroshot-frequency " + std::to_string(frequency) +
         " needs --zeroshot-classes FILE (the class names, e.g. the classes.json of loom make-images)");
  if (index(val_data).empty())
    fail("--zeroshot-frequency " + std::to_string(frequency) +
         " needs labelled images: --zeroshot-data INDEX or --val-data INDEX");
}

}  // namespace loom
