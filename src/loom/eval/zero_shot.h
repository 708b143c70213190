#pragma once
// Zero-shot classification from caption templates, as EVA-CLIP's training/zero_shot.py (and open_clip's
// build_zero_shot_classifier) do it:
//   classifier: per class, embed every template filled with the class name, F.normalize each
//               embedding, mean over the templates, divide by its norm   -> W [E, C], a column per class
//   run:        logits = (100 * F.normalize(image_latent)) @ W; top-1 / top-5: whether the target is among
//               the first k indices of logits.topk(5, sorted=True); accuracy = hits / images
//   log:        {"epoch": epoch, "imagenet-zeroshot-val-top1": top1, "imagenet-zeroshot-val-top5": top5}
//
// Ties: torch.topk on CPU keeps (value, index) pairs and, for k * 64 <= C, std::partial_sort's first k;
// otherwise std::nth_element at k - 1, then std::sort of the first k - 1 (ATen's topk_impl_loop), with
// the comparator (isnan(a) && !isnan(b)) || a > b. The same calls on the same sequence pick the same
// indices, ties and NaN included. With fewer than 5 classes torch.topk(5) fails; here k is min(5, C), so
// top-5 is 1 for C <= 5.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loom/eval/eval_log.h"
#include "loom/eval/zero_shot_template.h"

namespace loom::eval {

// texts -> their text latents [texts.size(), E] (before normalisation), e.g. the text tower's forward
// in eval mode, batching as it likes.
using TextEmbedder = std::function<void(const std::vector<std::string>& texts, float* latents)>;

// W [E, C] row-major (open_clip's zeroshot_weights: torch.stack(per-class embeddings, dim=1)). One call
// of `embed` per class with all its templates, as EVA-CLIP does.
std::vector<float> build_zero_shot_classifier(const std::vector<std::string>& classnames,
                                              const std::vector<std::string>& templates, int E,
                                              const TextEmbedder& embed);

// Top-1 / top-5 counts over batches of images.
class ZeroShotAccuracy {
 public:
  // classifier: [E, C] as built above.
  ZeroShotAccuracy(std::vector<float> classifier, int E, int C);

  // image_latents [n, E] before normalisation; targets in [0, C) (a UserError otherwise). topk (may be
  // null) receives each image's top min(5, C) class indices, [n, min(5, C)].
  void add(const float* image_latents, const int32_t* targets, int n, int64_t* topk = nullptr);

  int64_t images() const { return n_; }
  int64_t top1_hits() const { return top1_; }
  int64_t top5_hits() const { return top5_; }
  double top1() const { return n_ ? double(top1_) / double(n_) : 0.0; }
  double top5() const { return n_ ? double(top5_) / double(n_) : 0.0; }

  // EVA-CLIP's zero-shot results: epoch, <prefix>-zeroshot-val-top1, -top5 (prefix "imagenet").
  void add_metrics(std::vector<EvalMetric>& metrics, int epoch, const std::string& prefix = "imagenet") const;

 private:
  std::vector<float> W_;
  int E_, C_;
  int64_t n_ = 0, top1_ = 0, top5_ = 0;
  std::vector<float> features_, logits_;
};

// The indices torch.topk(row, k, largest=True, sorted=True) returns (see Ties above), into `out`.
void topk_indices(const float* row, int C, int k, std::vector<std::pair<float, int64_t>>& queue, int64_t* out);

}  // namespace loom::eval
