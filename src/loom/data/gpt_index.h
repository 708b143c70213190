#pragma once
// The index-mapping algorithms of Megatron-LM's legacy GPT dataset, exactly as in Megatron-LM at
// commit 68797d9 (2021-08-18; megatron/data/gpt_dataset.py, dataset_utils.py, blendable_dataset.py
// and helpers.cpp), the code that wrote the reference log 002 (2021-08-17). Exposed for tests;
// the trainer uses gpt_data.h.
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "loom/data/numpy_compat.h"

namespace loom::data {

// get_train_valid_test_split_: "a,b,c" (or "a/b/c", or "a") -> document boundaries
// [0, train_end, valid_end, size]. Fractions are normalised, each boundary is the running sum of
// Python's round(fraction * size) (half to even), then all are shifted so the last equals size.
std::array<int64_t, 4> train_valid_test_split(const std::string& splits, int64_t size);

// _num_epochs: the smallest E with (E * tokens_per_epoch - 1) // seq_length >= num_samples.
int64_t num_epochs(int64_t tokens_per_epoch, int64_t seq_length, int64_t num_samples);

// The separate_last_epoch decision of _build_index_mappings, with the values it prints.
struct LastEpochPlan {
  bool separate = false;
  int64_t last_epoch_samples = 0, samples_per_epoch = 0, samples_from_epochs_minus_one = 0;
};
LastEpochPlan plan_last_epoch(int64_t num_epochs, int64_t tokens_per_epoch, int64_t seq_length, int64_t num_samples);

// _build_doc_idx: `documents` repeated num_epochs times and shuffled with rng (as one array, or the
// first num_epochs-1 epochs and the last epoch shuffled separately).
std::vector<int32_t> build_doc_idx(const std::vector<int32_t>& documents, int64_t num_epochs, NumpyRandomState& rng,
                                   bool separate_last_epoch);

// helpers.cpp build_sample_idx: rows (index into doc_idx, token offset), num_samples + 1 of them,
// flattened; num_samples = (num_epochs * tokens_per_epoch - 1) // seq_length. sizes[d] is document
// d's length.
std::vector<int32_t> build_sample_idx(const std::vector<int32_t>& sizes, const std::vector<int32_t>& doc_idx,
                                      int32_t seq_length, int64_t num_epochs, int64_t tokens_per_epoch);

// _build_shuffle_idx: [0, num_samples) shuffled, followed by [num_samples, total_size) shuffled.
// Megatron stores it as uint32 unless total_size >= 2**32 - 1 (then int64); T is that type.
template <class T>
std::vector<T> build_shuffle_idx(int64_t num_samples, int64_t total_size, NumpyRandomState& rng) {
  std::vector<T> out(static_cast<size_t>(total_size));
  for (int64_t i = 0; i < total_size; i++) out[size_t(i)] = T(i);
  rng.shuffle(out.data(), num_samples);
  if (num_samples != total_size) rng.shuffle(out.data() + num_samples, total_size - num_samples);
  return out;
}

// get_datasets_weights_and_num_samples: the weights normalised (Python's running sum) and each
// dataset's sample counts, ceil(n * weight * 1.005).
struct BlendPlan {
  std::vector<double> weights;
  std::vector<std::array<int64_t, 3>> samples;  // per dataset: train, valid, test
};
BlendPlan plan_blend(const std::vector<double>& raw_weights, const std::array<int64_t, 3>& samples);

// numpy's np.sum of a float64 array (pairwise summation), used to renormalise blend weights.
double numpy_sum(const std::vector<double>& v);

// helpers.cpp build_blending_indices: for every sample the dataset with the largest sampling error.
void build_blending_indices(const std::vector<double>& weights, int64_t size, std::vector<uint8_t>& dataset_index,
                            std::vector<int64_t>& dataset_sample_index);

}  // namespace loom::data
