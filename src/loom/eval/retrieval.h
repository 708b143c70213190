#pragma once
// Image-text retrieval metrics of a held-out split with one caption per image, as open_clip's
// get_clip_metrics / EVA-CLIP's get_metrics (training/train.py) compute them:
//   logits_per_image = logit_scale * image_features @ text_features^T   [n, n] (row i: image i vs texts)
//   logits_per_text  = its transpose
//   per row, preds = position of the ground truth (the diagonal) in torch.argsort(row, descending=True)
//   {name}_mean_rank = preds.mean() + 1, {name}_median_rank = floor(median(preds)) + 1,
//   {name}_R@k = mean(preds < k) for k in 1, 5, 10     (name: image_to_text, text_to_image)
// The features are the model's outputs, already L2-normalised (l2_normalize_rows does F.normalize).
//
// Ties: torch.argsort(descending=True) on CPU is std::sort (not stable) of (value, index) pairs with
// the comparator (isnan(a) && !isnan(b)) || a > b, starting from index order (ATen's sort_kernel,
// unchanged from torch 1.13 to 2.x). Equal scores are ordered by what that introsort does, not by
// index; the ranks here come from the same std::sort with the same comparator on the same sequence, so
// they equal torch's exactly, ties and NaN (sorted first) included, whenever the scores are bitwise
// equal. Scores equal up to rounding can still order differently from torch, whose GEMM rounds
// differently (documented, not avoidable).
//
// Memory: the n x n score matrix (as in EVA-CLIP); rows are ranked in parallel, deterministically.
#include <cstdint>
#include <vector>

#include "loom/eval/eval_log.h"

namespace loom::eval {

struct RetrievalMetrics {
  double mean_rank = 0, median_rank = 0, r1 = 0, r5 = 0, r10 = 0;
};

struct ClipRetrieval {
  RetrievalMetrics image_to_text, text_to_image;
  std::vector<int64_t> i2t_preds, t2i_preds;  // 0-based position of the ground truth, per row
};

// F.normalize(x, dim=-1, eps=1e-12) of n rows of E: y = x / max(|x|, eps). y may equal x.
void l2_normalize_rows(const float* x, float* y, int n, int E);

// image_features, text_features: [n, E] (normalised); logit_scale: exp of the parameter.
ClipRetrieval clip_retrieval_metrics(const float* image_features, const float* text_features, int n, int E,
                                     float logit_scale);

// The metrics from 0-based positions (numpy's mean, median, floor; float64).
RetrievalMetrics metrics_from_preds(const std::vector<int64_t>& preds);

// torch.argsort(scores, descending=True)'s position of index `target` (see Ties above). `order` is
// scratch of n pairs.
int64_t descending_position(const float* scores, int64_t n, int64_t target,
                            std::vector<std::pair<float, int64_t>>& order);

// Appends image_to_text_* then text_to_image_* in get_metrics' order (numpy float64 values).
void add_retrieval_metrics(std::vector<EvalMetric>& metrics, const ClipRetrieval& r);

}  // namespace loom::eval
