#include "loom/eval/retrieval.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "loom/core/error.h"
#include "loom/kernels/cpu/gemm.h"

namespace loom::eval {

void l2_normalize_rows(const float* x, float* y, int n, int E) {
  for (int i = 0; i < n; i++) {
    const float* xr = x + size_t(i) * E;
    double ss = 0;
    for (int k = 0; k < E; k++) ss += double(xr[k]) * double(xr[k]);
    const float d = std::max(float(std::sqrt(ss)), 1e-12f);
    float* yr = y + size_t(i) * E;
    for (int k = 0; k < E; k++) yr[k] = xr[k] / d;
  }
}

int64_t descending_position(const float* scores, int64_t n, int64_t target,
                            std::vector<std::pair<float, int64_t>>& order) {
  order.resize(size_t(n));
  for (int64_t j = 0; j < n; j++) order[size_t(j)] = {scores[j], j};
  // ATen's KeyValueCompDesc: NaN first, then larger values; everything else compares equal.
  std::sort(order.begin(), order.end(), [](const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
    return (std::isnan(a.first) && !std::isnan(b.first)) || a.first > b.first;
  });
  for (int64_t p = 0; p < n; p++)
    if (order[size_t(p)].second == target) return p;
  return n;  // not reached: target < n
}

RetrievalMetrics metrics_from_preds(const std::vector<int64_t>& preds) {
  RetrievalMetrics m;
  const size_t n = preds.size();
  if (n == 0) return m;
  // Sums of integers below 2^53 are exact in any order, so these equal numpy's pairwise sums.
  double sum = 0;
  long below[3] = {0, 0, 0};
  for (int64_t p : preds) {
    sum += double(p);
    below[0] += p < 1;
    below[1] += p < 5;
    below[2] += p < 10;
  }
  m.mean_rank = sum / double(n) + 1.0;
  std::vector<int64_t> s(preds);
  std::sort(s.begin(), s.end());
  // np.median: the middle value, or the mean of the two middle values (in float64).
  const double med = n % 2 ? double(s[n / 2]) : (double(s[n / 2 - 1]) + double(s[n / 2])) / 2.0;
  m.median_rank = std::floor(med) + 1.0;
  m.r1 = double(below[0]) / double(n);
  m.r5 = double(below[1]) / double(n);
  m.r10 = double(below[2]) / double(n);
  return m;
}

ClipRetrieval clip_retrieval_metrics(const float* image_features, const float* text_features, int n, int E,
                                     float logit_scale) {
  require(n > 0 && E > 0, "retrieval metrics need at least one image-caption pair");
  // (logit_scale * image_features) @ text_features^T, in torch's order of operations.
  std::vector<float> scaled(size_t(n) * E), logits(size_t(n) * n);
  for (size_t k = 0; k < scaled.size(); k++) scaled[k] = logit_scale * image_features[k];
  cpu::gemm(false, true, n, n, E, 1.0f, scaled.data(), E, text_features, E, 0.0f, logits.data(), n);
  ClipRetrieval r;
  r.i2t_preds.assign(size_t(n), 0);
  r.t2i_preds.assign(size_t(n), 0);
#pragma omp parallel
  {
    std::vector<std::pair<float, int64_t>> order;
    std::vector<float> column(static_cast<size_t>(n));
#pragma omp for schedule(dynamic, 4)
    for (int i = 0; i < n; i++) {
      r.i2t_preds[size_t(i)] = descending_position(logits.data() + size_t(i) * n, n, i, order);
      for (int j = 0; j < n; j++) column[size_t(j)] = logits[size_t(j) * n + i];  // logits_per_text row i
      r.t2i_preds[size_t(i)] = descending_position(column.data(), n, i, order);
    }
  }
  r.image_to_text = metrics_from_preds(r.i2t_preds);
  r.text_to_image = metrics_from_preds(r.t2i_preds);
  return r;
}

void add_retrieval_metrics(std::vector<EvalMetric>& metrics, const ClipRetrieval& r) {
  for (const auto& [name, m] : {std::pair<const char*, const RetrievalMetrics&>{"image_to_text", r.image_to_text},
                                {"text_to_image", r.text_to_image}}) {
    const std::string p = name;
    set_metric(metrics, p + "_mean_rank", m.mean_rank, MetricKind::NumpyFloat64);
    set_metric(metrics, p + "_median_rank", m.median_rank, MetricKind::NumpyFloat64);
    set_metric(metrics, p + "_R@1", m.r1, MetricKind::NumpyFloat64);
    set_metric(metrics, p + "_R@5", m.r5, MetricKind::NumpyFloat64);
    set_metric(metrics, p + "_R@10", m.r10, MetricKind::NumpyFloat64);
  }
}

}  // namespace loom::eval
