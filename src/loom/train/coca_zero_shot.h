#pragma once
// Zero-shot classification during a CoCa run, as EVA-CLIP's training/zero_shot.py zero_shot_eval does it
// after an epoch (rank 0): the classifier from every class's filled-in templates through the text tower
// (eval/zero_shot.h: each embedding normalised, averaged over the templates, renormalised), then every
// image of the labelled index (resize + centre crop, no image dropped: the last batch may be smaller)
// through the image tower, top-1 / top-5 of 100 x image @ W. It logs EVA-CLIP's lines
// ("Starting zero-shot imagenet.", "Building zero-shot classifier", "Using classifier", "Finished
// zero-shot imagenet.") and adds {"epoch", "imagenet-zeroshot-val-top1", "imagenet-zeroshot-val-top5"}
// (EVA-CLIP's keys, whatever the classes are) to the epoch's evaluation metrics.
//
// LOOM_TEST_ZEROSHOT_DUMP=DIR (tests only) writes DIR/zeroshot_epoch_N.json with what the numbers are
// computed from: the classes, templates, filled-in texts, their text embeddings, every image's
// embedding, label and index entry, so a test can recompute them independently.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/eval/eval_log.h"
#include "loom/eval/zero_shot_classes.h"

namespace loom {

struct CocaArgs;
class CocaModel;
class CocaDataSource;
namespace data {
class Tokenizer;
}

class CocaZeroShot {
 public:
  // Reads the classes file and the labelled index, checking both (UserError), before training starts.
  explicit CocaZeroShot(const CocaArgs& a);
  ~CocaZeroShot();

  bool due(int64_t epoch) const;
  void evaluate(CocaModel& model, int64_t epoch, std::vector<eval::EvalMetric>& metrics,
                const std::function<void(const std::string&)>& log);

 private:
  const CocaArgs& a_;
  eval::ZeroShotClasses classes_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<CocaDataSource> images_;
};

}  // namespace loom
