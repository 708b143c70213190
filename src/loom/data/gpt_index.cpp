#include "loom/data/gpt_index.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "loom/core/error.h"

namespace loom::data {
namespace {

// Python's float(s): surrounding white space allowed, the rest must be a number.
double python_float(std::string s, const std::string& context) {
  const auto first = s.find_first_not_of(" \t\n\r\f\v");
  const auto last = s.find_last_not_of(" \t\n\r\f\v");
  s = first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    fail(context + ": could not convert string to float: '" + s + "'");
  return v;
}

}  // namespace

std::array<int64_t, 4> train_valid_test_split(const std::string& splits_string, int64_t size) {
  const std::string context = "--split '" + splits_string + "'";
  std::vector<double> splits;
  char sep = splits_string.find(',') != std::string::npos ? ',' : splits_string.find('/') != std::string::npos ? '/' : 0;
  if (sep) {
    size_t start = 0;
    for (;;) {
      size_t end = splits_string.find(sep, start);
      splits.push_back(python_float(splits_string.substr(start, end == std::string::npos ? end : end - start), context));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  } else {
    splits.push_back(python_float(splits_string, context));
  }
  while (splits.size() < 3) splits.push_back(0.0);
  splits.resize(3);
  double sum = 0.0;
  for (double s : splits) {
    if (!std::isfinite(s) || s < 0) fail(context + ": split weights must be finite and non-negative");
    sum += s;
  }
  if (!(sum > 0.0)) fail(context + ": split weights must not all be zero");
  for (double& s : splits) s = s / sum;
  std::array<int64_t, 4> index{0, 0, 0, 0};
  for (size_t i = 0; i < 3; i++) index[i + 1] = index[i] + int64_t(std::nearbyint(splits[i] * double(size)));
  const int64_t diff = index[3] - size;
  for (size_t i = 1; i < 4; i++) index[i] -= diff;
  return index;
}

int64_t num_epochs(int64_t tokens_per_epoch, int64_t seq_length, int64_t num_samples) {
  if (tokens_per_epoch <= 1) throw std::invalid_argument("num_epochs: an epoch needs at least 2 tokens");
  int64_t epochs = 0, total = 0;
  for (;;) {
    epochs++;
    total += tokens_per_epoch;
    if ((total - 1) / seq_length >= num_samples) return epochs;
  }
}

LastEpochPlan plan_last_epoch(int64_t epochs, int64_t tokens_per_epoch, int64_t seq_length, int64_t num_samples) {
  LastEpochPlan p;
  if (epochs == 1) return p;
  p.samples_from_epochs_minus_one = ((epochs - 1) * tokens_per_epoch - 1) / seq_length;
  p.last_epoch_samples = num_samples - p.samples_from_epochs_minus_one;
  p.samples_per_epoch = (tokens_per_epoch - 1) / seq_length;
  // Megatron 2021 asserted last < per_epoch + 1, which fails for some valid requests (e.g. 4 tokens
  // per epoch, seq_length 2, 3 samples); Megatron's 2023 fix (1997e94) asserts <=, which always holds.
  if (p.last_epoch_samples < 0 || p.last_epoch_samples > p.samples_per_epoch + 1)
    throw std::logic_error("last epoch number of samples out of range");
  // int(0.80 * num_samples_per_epoch), in double as Python computes it.
  p.separate = p.last_epoch_samples < int64_t(0.80 * double(p.samples_per_epoch));
  return p;
}

std::vector<int32_t> build_doc_idx(const std::vector<int32_t>& documents, int64_t epochs, NumpyRandomState& rng,
                                   bool separate_last_epoch) {
  if (!separate_last_epoch || epochs == 1) {
    std::vector<int32_t> idx;
    idx.reserve(size_t(epochs) * documents.size());
    for (int64_t e = 0; e < epochs; e++) idx.insert(idx.end(), documents.begin(), documents.end());
    rng.shuffle(idx.data(), int64_t(idx.size()));
    return idx;
  }
  std::vector<int32_t> first = build_doc_idx(documents, epochs - 1, rng, false);
  std::vector<int32_t> last = build_doc_idx(documents, 1, rng, false);
  first.insert(first.end(), last.begin(), last.end());
  return first;
}

std::vector<int32_t> build_sample_idx(const std::vector<int32_t>& sizes, const std::vector<int32_t>& doc_idx,
                                      int32_t seq_length, int64_t epochs, int64_t tokens_per_epoch) {
  const int64_t num_samples = (epochs * tokens_per_epoch - 1) / seq_length;
  if (int64_t(doc_idx.size()) > int64_t(std::numeric_limits<int32_t>::max()))
    fail("the document index has " + std::to_string(doc_idx.size()) +
         " entries, more than Megatron's int32 sample index can address (use fewer samples or documents)");
  std::vector<int32_t> sample_idx(size_t(2 * (num_samples + 1)));
  int64_t sample_index = 0, doc_idx_index = 0;
  int32_t doc_offset = 0;
  sample_idx[0] = 0;
  sample_idx[1] = 0;
  ++sample_index;
  while (sample_index <= num_samples) {
    int32_t remaining = seq_length + 1;
    while (remaining != 0) {
      const int32_t doc_length = sizes[size_t(doc_idx[size_t(doc_idx_index)])] - doc_offset;
      remaining -= doc_length;
      if (remaining <= 0) {
        doc_offset += remaining + doc_length - 1;
        remaining = 0;
      } else {
        ++doc_idx_index;
        doc_offset = 0;
      }
    }
    sample_idx[size_t(2 * sample_index)] = int32_t(doc_idx_index);
    sample_idx[size_t(2 * sample_index + 1)] = doc_offset;
    ++sample_index;
  }
  return sample_idx;
}

BlendPlan plan_blend(const std::vector<double>& raw_weights, const std::array<int64_t, 3>& samples) {
  BlendPlan plan;
  double sum = 0.0;
  for (double w : raw_weights) sum += w;
  if (!(sum > 0.0)) fail("--data-path: the dataset weights must not all be zero");
  for (double w : raw_weights) plan.weights.push_back(w / sum);
  for (double w : plan.weights) {
    std::array<int64_t, 3> n{};
    for (size_t s = 0; s < 3; s++) n[s] = int64_t(std::ceil(double(samples[s]) * w * 1.005));
    plan.samples.push_back(n);
  }
  return plan;
}

double numpy_sum(const std::vector<double>& v) {
  // numpy's pairwise_sum for a contiguous float64 array.
  struct Rec {
    static double sum(const double* a, size_t n) {
      if (n < 8) {
        double r = 0.0;  // numpy starts from -0.0 here; the same for any non-empty input but [-0.0]
        for (size_t i = 0; i < n; i++) r += a[i];
        return r;
      }
      if (n <= 128) {
        double r[8];
        for (size_t j = 0; j < 8; j++) r[j] = a[j];
        size_t i = 8;
        for (; i < n - (n % 8); i += 8)
          for (size_t j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
      }
      size_t n2 = n / 2;
      n2 -= n2 % 8;
      return sum(a, n2) + sum(a + n2, n - n2);
    }
  };
  return Rec::sum(v.data(), v.size());
}

void build_blending_indices(const std::vector<double>& weights, int64_t size, std::vector<uint8_t>& dataset_index,
                            std::vector<int64_t>& dataset_sample_index) {
  const size_t n = weights.size();
  if (n == 0 || n >= 255) fail("blending needs between 1 and 254 datasets");
  dataset_index.assign(size_t(size), 0);
  dataset_sample_index.assign(size_t(size), 0);
  std::vector<int64_t> current(n, 0);
  for (int64_t s = 0; s < size; s++) {
    const double sd = std::max(double(s), 1.0);
    size_t best = 0;
    double max_error = weights[0] * sd - double(current[0]);
    for (size_t d = 1; d < n; d++) {
      const double error = weights[d] * sd - double(current[d]);
      if (error > max_error) {
        max_error = error;
        best = d;
      }
    }
    dataset_index[size_t(s)] = uint8_t(best);
    dataset_sample_index[size_t(s)] = current[best];
    current[best]++;
  }
}

}  // namespace loom::data
