#include "loom/eval/zero_shot.h"

#include <algorithm>
#include <cmath>

#include "loom/core/error.h"
#include "loom/eval/retrieval.h"
#include "loom/kernels/cpu/gemm.h"

namespace loom::eval {

std::vector<float> build_zero_shot_classifier(const std::vector<std::string>& classnames,
                                              const std::vector<std::string>& templates, int E,
                                              const TextEmbedder& embed) {
  require(!classnames.empty(), "zero-shot classification needs at least one class name");
  require(!templates.empty(), "zero-shot classification needs at least one template");
  const int C = int(classnames.size()), T = int(templates.size());
  std::vector<float> W(size_t(E) * C), lat(size_t(T) * E);
  std::vector<std::string> texts(static_cast<size_t>(T));
  std::vector<double> mean(static_cast<size_t>(E));
  for (int c = 0; c < C; c++) {
    for (int t = 0; t < T; t++) texts[size_t(t)] = fill_template(templates[size_t(t)], classnames[size_t(c)]);
    embed(texts, lat.data());
    l2_normalize_rows(lat.data(), lat.data(), T, E);
    std::fill(mean.begin(), mean.end(), 0.0);
    for (int t = 0; t < T; t++)
      for (int k = 0; k < E; k++) mean[size_t(k)] += lat[size_t(t) * E + k];
    double ss = 0;
    for (int k = 0; k < E; k++) {
      mean[size_t(k)] /= T;
      const float m = float(mean[size_t(k)]);
      ss += double(m) * double(m);
    }
    // class_embedding /= class_embedding.norm(): no eps (a zero mean gives NaN, as in torch).
    const float norm = float(std::sqrt(ss));
    for (int k = 0; k < E; k++) W[size_t(k) * C + c] = float(mean[size_t(k)]) / norm;
  }
  return W;
}

void topk_indices(const float* row, int C, int k, std::vector<std::pair<float, int64_t>>& queue, int64_t* out) {
  queue.resize(size_t(C));
  for (int j = 0; j < C; j++) queue[size_t(j)] = {row[j], j};
  auto comp = [](const std::pair<float, int64_t>& x, const std::pair<float, int64_t>& y) {
    return (std::isnan(x.first) && !std::isnan(y.first)) || x.first > y.first;
  };
  if (int64_t(k) * 64 <= C) {
    std::partial_sort(queue.begin(), queue.begin() + k, queue.end(), comp);
  } else {
    std::nth_element(queue.begin(), queue.begin() + (k - 1), queue.end(), comp);
    std::sort(queue.begin(), queue.begin() + (k - 1), comp);
  }
  for (int j = 0; j < k; j++) out[j] = queue[size_t(j)].second;
}

ZeroShotAccuracy::ZeroShotAccuracy(std::vector<float> classifier, int E, int C)
    : W_(std::move(classifier)), E_(E), C_(C) {
  require(E > 0 && C > 0 && W_.size() == size_t(E) * C, "zero-shot classifier: expected an [E, C] matrix");
}

void ZeroShotAccuracy::add(const float* image_latents, const int32_t* targets, int n, int64_t* topk) {
  if (n <= 0) return;
  for (int i = 0; i < n; i++)
    require(targets[i] >= 0 && targets[i] < C_, "zero-shot target " + std::to_string(targets[i]) +
                                                    " outside the " + std::to_string(C_) + " classes");
  features_.resize(size_t(n) * E_);
  logits_.resize(size_t(n) * C_);
  l2_normalize_rows(image_latents, features_.data(), n, E_);
  for (float& v : features_) v *= 100.0f;  // (100. * image_features) @ classifier
  cpu::gemm(false, false, n, C_, E_, 1.0f, features_.data(), E_, W_.data(), C_, 0.0f, logits_.data(), C_);
  const int k = std::min(5, C_);
  int64_t h1 = 0, h5 = 0;
#pragma omp parallel reduction(+ : h1, h5)
  {
    std::vector<std::pair<float, int64_t>> queue;
    int64_t idx[5];
#pragma omp for schedule(static)
    for (int i = 0; i < n; i++) {
      topk_indices(logits_.data() + size_t(i) * C_, C_, k, queue, idx);
      if (topk) std::copy(idx, idx + k, topk + size_t(i) * k);
      h1 += idx[0] == targets[i];
      for (int j = 0; j < k; j++) h5 += idx[j] == targets[i];
    }
  }
  n_ += n;
  top1_ += h1;
  top5_ += h5;
}

void ZeroShotAccuracy::add_metrics(std::vector<EvalMetric>& metrics, int epoch, const std::string& prefix) const {
  set_metric(metrics, "epoch", epoch, MetricKind::PyInt);
  set_metric(metrics, prefix + "-zeroshot-val-top1", top1(), MetricKind::PyFloat);
  set_metric(metrics, prefix + "-zeroshot-val-top5", top5(), MetricKind::PyFloat);
}

}  // namespace loom::eval
