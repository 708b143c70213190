#pragma once
// The zero-shot classification flags of `loom train --model coca` (EVA-CLIP's --zeroshot-frequency; its
// --imagenet-val ImageFolder becomes an image index whose entries carry class labels):
//   --zeroshot-frequency N   after every N-th epoch (and the last), as EVA-CLIP's zero_shot_eval decides
//   --zeroshot-classes FILE  the class names (and prompt templates): eval/zero_shot_classes.h
//   --zeroshot-data INDEX    the labelled images (default: --val-data)
//   --zeroshot-label-key K   the label's key / column (default: the classes file's label_key, else "label")
#include <cstdint>
#include <string>

namespace loom {

class ArgParser;

struct ZeroShotArgs {
  int64_t frequency = 0;
  std::string classes, data, label_key;

  void register_flags(ArgParser& p);
  bool enabled() const { return frequency > 0; }
  // EVA-CLIP's zero_shot_eval: (epoch % frequency) == 0 or the last epoch.
  bool due(int64_t epoch, int64_t epochs) const { return enabled() && (epoch % frequency == 0 || epoch == epochs); }
  // The index zero-shot reads: --zeroshot-data, else --val-data.
  std::string index(const std::string& val_data) const { return data.empty() ? val_data : data; }
  // Checks the flags together (UserError); files are read later, still before training.
  void validate(const std::string& val_data) const;
};

}  // namespace loom
