#include "loom/train/training_data.h"

#include <algorithm>
#include <filesystem>

#include <limits>
#include <memory>

#include "loom/core/error.h"
#include "loom/data/random_sampler.h"
#include "loom/train/arguments.h"

namespace loom {

namespace {

SampleSet as_sample_set(const std::unique_ptr<data::SampleSource>& src) {
  SampleSet s;
  if (!src) return s;
  s.size = src->size();
  const data::SampleSource* raw = src.get();
  s.get = [raw](int64_t i, int32_t* out) { raw->get(i, out); };
  return s;
}

// --dataloader-type cyclic: the trainer names samples by Megatron's sequential position, which the random
// sampler turns into the index its epoch's permutation reads. Positions run on over the epochs (no wrap).
SampleSet through_random_sampler(const SampleSet& set, const TrainArgs& a, int dp_size) {
  data::RandomSamplerConfig c;
  c.total_samples = set.size;
  c.micro_batch = a.micro_batch_size;
  c.dp_size = dp_size;
  c.data_sharding = a.compat.data_sharding;
  auto sampler = std::make_shared<data::MegatronRandomSampler>(c);
  SampleSet s;
  s.size = std::numeric_limits<int64_t>::max();
  s.get = [inner = set.get, sampler](int64_t position, int32_t* out) { inner(sampler->index(position), out); };
  return s;
}

}  // namespace

void check_data_prefixes(const std::vector<std::string>& data_path) {
  // Either "prefix" or "w1 prefix1 w2 prefix2 ...": check every prefix's files before any work.
  std::vector<std::string> prefixes;
  if (data_path.size() == 1) {
    prefixes = data_path;
  } else {
    require(data_path.size() % 2 == 0, "--data-path with several datasets takes weight-prefix pairs");
    for (size_t i = 1; i < data_path.size(); i += 2) prefixes.push_back(data_path[i]);
  }
  for (const auto& prefix : prefixes)
    for (const char* ext : {".bin", ".idx"})
      require(std::filesystem::is_regular_file(prefix + ext),
              "data file " + prefix + ext + " not found (--data-path takes the prefix 'loom preprocess' wrote)");
}

namespace {

data::GptDataConfig gpt_data_config(const TrainArgs& a, int64_t vocab_size, bool quiet) {
  data::GptDataConfig dc;
  dc.data_path = a.data_path;
  dc.split = a.split;
  dc.seq_length = a.seq_length;
  dc.seed = uint64_t(a.seed);
  const data::TargetSamples target =
      data::megatron_target_samples(a.train_iters, *a.global_batch_size, a.eval_interval, a.eval_iters);
  dc.train_samples = a.compat.train_samples.value_or(target.train);  // Megatron: --train-samples as given
  dc.valid_samples = target.valid;
  dc.test_samples = target.test;
  dc.cache_dir = a.data_cache_path;
  dc.quiet = quiet;
  dc.vocab_size = vocab_size;
  return dc;
}

}  // namespace

int64_t predicted_index_map_bytes(const TrainArgs& a, int dp_size) {
  const data::GptDataConfig dc = gpt_data_config(a, 0, true);
  int64_t permutations = 0;
  if (a.compat.cyclic_data()) {
    const int64_t per_rank = a.compat.data_sharding ? std::max(1, dp_size) : 1;
    permutations = int64_t(sizeof(int64_t)) * (dc.train_samples + (a.eval_iters > 0 ? dc.valid_samples + dc.test_samples : 0)) / per_rank;
  }
  return data::predicted_index_map_bytes(dc) + permutations;
}

TrainingData build_training_data(const TrainArgs& a, int64_t vocab_size, bool quiet, int dp_size) {
  TrainingData d;
  d.datasets = data::build_gpt_datasets(gpt_data_config(a, vocab_size, quiet));
  d.train = as_sample_set(d.datasets.train);
  d.valid = as_sample_set(d.datasets.valid);
  d.test = as_sample_set(d.datasets.test);
  require(a.train_iters == 0 || d.train.size > 0, "the training split is empty: check --split and the data");
  if (a.compat.cyclic_data()) {
    if (d.train.size > 0) d.train = through_random_sampler(d.train, a, dp_size);
    for (SampleSet* s : {&d.valid, &d.test})  // read only by evaluation
      if (s->size > 0 && a.eval_iters > 0) *s = through_random_sampler(*s, a, dp_size);
  }
  return d;
}

}  // namespace loom
