#include "loom/data/gpt_data.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "loom/core/error.h"
#include "loom/data/gpt_index.h"
#include "loom/data/indexed_dataset.h"
#include "loom/data/numpy_compat.h"
#include "loom/util/system_memory.h"

namespace loom::data {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class Log {
 public:
  explicit Log(bool quiet) : quiet_(quiet) {}
  __attribute__((format(printf, 2, 3))) void operator()(const char* fmt, ...) const {
    if (quiet_) return;
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  bool quiet_;
};

// Python's float() for a --data-path weight.
double parse_weight(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\n\r\f\v");
  const auto last = s.find_last_not_of(" \t\n\r\f\v");
  const std::string t = first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
  double v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size())
    fail("--data-path: '" + s + "' is not a weight; give one path, or weight/path pairs such as 0.3 a 0.7 b");
  if (!std::isfinite(v) || v < 0) fail("--data-path: weight '" + s + "' must be finite and non-negative");
  return v;
}

// One split of one indexed dataset: Megatron's GPTDataset.
class GptSplit final : public SampleSource {
 public:
  GptSplit(std::shared_ptr<const IndexedDataset> ds, std::unique_ptr<NpyArray> doc_idx, std::unique_ptr<NpyArray> sample_idx,
           std::unique_ptr<NpyArray> shuffle_idx, int seq_length)
      : ds_(std::move(ds)),
        doc_idx_(std::move(doc_idx)),
        sample_idx_(std::move(sample_idx)),
        shuffle_idx_(std::move(shuffle_idx)),
        seq_length_(seq_length) {}

  // -1: sample i -> [sample_idx[i], sample_idx[i+1]).
  int64_t size() const override { return sample_idx_->shape()[0] - 1; }

  void get(int64_t index, int32_t* tokens) const override {
    if (index < 0 || index >= size())
      throw std::out_of_range("sample " + std::to_string(index) + " of " + std::to_string(size()) + " in " +
                              ds_->prefix());
    const int64_t idx = shuffle_idx_->at(index);
    const int64_t doc_f = sample_idx_->at(2 * idx), off_f = sample_idx_->at(2 * idx + 1);
    const int64_t doc_l = sample_idx_->at(2 * idx + 2), off_l = sample_idx_->at(2 * idx + 3);
    // Length first, so an inconsistent index can never write past seq_length + 1 tokens.
    int64_t total = 0;
    if (doc_f == doc_l) {
      total = off_l - off_f + 1;
    } else {
      total = ds_->sequence_length(doc_idx_->at(doc_f)) - off_f + off_l + 1;
      for (int64_t i = doc_f + 1; i < doc_l; i++) total += ds_->sequence_length(doc_idx_->at(i));
    }
    if (total != int64_t(seq_length_) + 1)
      throw std::runtime_error("sample " + std::to_string(index) + " of " + ds_->prefix() + " has " +
                               std::to_string(total) + " tokens, expected " + std::to_string(seq_length_ + 1));
    if (doc_f == doc_l) {
      ds_->get(doc_idx_->at(doc_f), off_f, off_l - off_f + 1, tokens);
      return;
    }
    int64_t d = doc_idx_->at(doc_f);
    int64_t n = ds_->sequence_length(d) - off_f;
    ds_->get(d, off_f, n, tokens);
    tokens += n;
    for (int64_t i = doc_f + 1; i < doc_l; i++) {
      d = doc_idx_->at(i);
      n = ds_->sequence_length(d);
      ds_->get(d, 0, n, tokens);
      tokens += n;
    }
    ds_->get(doc_idx_->at(doc_l), 0, off_l + 1, tokens);
  }

 private:
  std::shared_ptr<const IndexedDataset> ds_;
  std::unique_ptr<NpyArray> doc_idx_, sample_idx_, shuffle_idx_;
  int seq_length_;
};

// Megatron's BlendableDataset (2021): sum of the parts' lengths, interleaved by sampling error.
class Blended final : public SampleSource {
 public:
  Blended(std::vector<std::unique_ptr<SampleSource>> parts, const std::vector<double>& weights, const Log& log)
      : parts_(std::move(parts)) {
    int64_t size = 0;
    for (auto& p : parts_) size += p->size();
    // weights = np.array(weights); weights /= np.sum(weights)
    std::vector<double> w = weights;
    const double sum = numpy_sum(w);
    for (double& x : w) x /= sum;
    const auto start = Clock::now();
    log("> building indices for blendable datasets ...");
    build_blending_indices(w, size, dataset_index_, sample_index_);
    std::vector<int64_t> counts(parts_.size(), 0);
    for (uint8_t d : dataset_index_) counts[d]++;
    log(" > sample ratios:");
    for (size_t d = 0; d < parts_.size(); d++)
      log("   dataset %zu, input: %g, achieved: %g", d, w[d], double(counts[d]) / double(size));
    log("> elapsed time for building blendable dataset indices: %.2f (sec)", seconds_since(start));
  }
  int64_t size() const override { return int64_t(dataset_index_.size()); }
  void get(int64_t index, int32_t* tokens) const override {
    if (index < 0 || index >= size())
      throw std::out_of_range("blended sample " + std::to_string(index) + " of " + std::to_string(size()));
    const auto& part = *parts_[dataset_index_[size_t(index)]];
    const int64_t s = sample_index_[size_t(index)];
    if (s >= part.size())  // Megatron 2021 raises IndexError here too; training never reaches it
      throw std::out_of_range("blended sample " + std::to_string(index) + " needs sample " + std::to_string(s) +
                              " of dataset " + std::to_string(int(dataset_index_[size_t(index)])) + ", which has " +
                              std::to_string(part.size()));
    part.get(s, tokens);
  }

 private:
  std::vector<std::unique_ptr<SampleSource>> parts_;
  std::vector<uint8_t> dataset_index_;
  std::vector<int64_t> sample_index_;
};

struct MapFiles {
  std::string doc, sample, shuffle;
};

// Why cached index maps do not belong to this dataset and request, or "" when they do.
std::string check_maps(const NpyArray& doc, const NpyArray& sample, const NpyArray& shuffle, const IndexedDataset& ds,
                       int64_t begin, int64_t end, int64_t epochs, int64_t tokens_per_epoch, int seq_length) {
  const int64_t docs = end - begin;
  const int64_t samples = (epochs * tokens_per_epoch - 1) / seq_length;
  if (doc.shape() != std::vector<int64_t>{epochs * docs})
    return "doc-idx has " + std::to_string(doc.size()) + " entries, expected " + std::to_string(epochs * docs);
  if (sample.shape() != std::vector<int64_t>{samples + 1, 2})
    return "sample-idx has " + std::to_string(sample.size() / 2) + " rows, expected " + std::to_string(samples + 1);
  if (shuffle.shape() != std::vector<int64_t>{samples})
    return "shuffle-idx has " + std::to_string(shuffle.size()) + " entries, expected " + std::to_string(samples);
  for (int64_t i = 0; i < doc.size(); i++) {
    const int64_t d = doc.at(i);
    if (d < begin || d >= end) return "doc-idx names document " + std::to_string(d) + " outside the split";
  }
  for (int64_t i = 0; i <= samples; i++) {
    const int64_t p = sample.at(2 * i), o = sample.at(2 * i + 1);
    if (p < 0 || p >= doc.size() || o < 0 || o >= std::max<int64_t>(1, ds.sequence_length(doc.at(p))))
      return "sample-idx row " + std::to_string(i) + " points outside the documents";
    if (i > 0 && p < sample.at(2 * i - 2)) return "sample-idx is not in document order";
    // Every sample spans seq_length + 1 tokens (GptSplit::get's count, which otherwise ends the run with
    // an internal error mid-training). Rows are in document order, so the sums walk the documents once.
    if (i > 0) {
      const int64_t pf = sample.at(2 * i - 2), of = sample.at(2 * i - 1);
      int64_t total = 0;
      if (pf == p) {
        total = o - of + 1;
      } else {
        total = ds.sequence_length(doc.at(pf)) - of + o + 1;
        for (int64_t k = pf + 1; k < p; k++) total += ds.sequence_length(doc.at(k));
      }
      if (total != int64_t(seq_length) + 1)
        return "sample " + std::to_string(i - 1) + " of sample-idx has " + std::to_string(total) + " tokens, expected " +
               std::to_string(seq_length + 1);
    }
  }
  for (int64_t i = 0; i < shuffle.size(); i++) {
    const int64_t s = shuffle.at(i);
    if (s < 0 || s >= samples) return "shuffle-idx names sample " + std::to_string(s);
  }
  return "";
}

// --data-path as Megatron reads it: "prefix", or weight/prefix pairs (prefixes trimmed of whitespace).
struct DataPaths {
  std::vector<std::string> prefixes;
  std::vector<double> weights;  // empty for a single prefix
};
DataPaths parse_data_path(const std::vector<std::string>& data_path) {
  DataPaths d;
  if (data_path.size() == 1) {
    d.prefixes.push_back(data_path[0]);
    return d;
  }
  if (data_path.size() % 2 != 0)
    fail("--data-path: expected one path or weight/path pairs (w1 p1 w2 p2 ...), got " +
         std::to_string(data_path.size()) + " values");
  for (size_t i = 0; i < data_path.size(); i += 2) {
    d.weights.push_back(parse_weight(data_path[i]));
    std::string p = data_path[i + 1];
    const auto first = p.find_first_not_of(" \t\n\r\f\v");
    const auto last = p.find_last_not_of(" \t\n\r\f\v");
    d.prefixes.push_back(first == std::string::npos ? std::string() : p.substr(first, last - first + 1));
  }
  if (d.prefixes.size() >= 255) fail("--data-path: at most 254 datasets can be blended");
  return d;
}

// Bytes of one split's doc, sample and shuffle index (int32 documents, int32 (document, offset) rows,
// uint32 or int64 shuffle as Megatron stores them).
int64_t split_map_bytes(int64_t epochs, int64_t docs, int64_t tokens_per_epoch, int seq_length) {
  const int64_t samples = (epochs * tokens_per_epoch - 1) / seq_length;
  return epochs * docs * 4 + (samples + 1) * 8 + samples * (samples >= 0xFFFFFFFFll ? 8 : 4);
}

// Index maps larger than the machine can hold are refused before they are built: a tiny dataset read
// for 1e8 iterations needs millions of epochs of document order.
void check_split_fits(const std::string& name, const IndexedDataset& ds, int64_t epochs, int64_t docs,
                      int64_t tokens_per_epoch, int seq_length, int64_t num_samples) {
  const int64_t bytes = split_map_bytes(epochs, docs, tokens_per_epoch, seq_length);
  const int64_t available = available_memory_bytes();
  if (available > 0 && bytes > available)
    fail("dataset '" + ds.prefix() + "': the " + name + " split's index maps for " + std::to_string(num_samples) +
         " samples (" + std::to_string(epochs) + " epochs of " + std::to_string(docs) + " documents) need " +
         human_bytes(double(bytes)) + ", more than the " + human_bytes(double(available)) +
         " available: lower --train-iters (or the eval sizes) or add data");
}

std::unique_ptr<SampleSource> build_split(const std::string& name, const std::string& cache_prefix,
                                          const std::shared_ptr<const IndexedDataset>& ds, int64_t begin, int64_t end,
                                          int64_t num_samples, int seq_length, uint64_t seed, const Log& log) {
  std::vector<int32_t> documents;
  int64_t tokens_per_epoch = 0;
  for (int64_t d = begin; d < end; d++) {
    documents.push_back(int32_t(d));
    tokens_per_epoch += ds->sequence_length(d);
  }
  if (tokens_per_epoch <= 1)
    fail("dataset '" + ds->prefix() + "': the " + name + " split (documents [" + std::to_string(begin) + ", " +
         std::to_string(end) + ")) has " + std::to_string(tokens_per_epoch) +
         (tokens_per_epoch == 1 ? " token" : " tokens") + "; samples need at least 2 (change --split or add data)");
  const int64_t epochs = num_epochs(tokens_per_epoch, seq_length, num_samples);
  check_split_fits(name, *ds, epochs, end - begin, tokens_per_epoch, seq_length, num_samples);
  NumpyRandomState rng(seed);

  const std::string base = cache_prefix + "_" + name + "_indexmap_" + std::to_string(num_samples) + "ns_" +
                           std::to_string(seq_length) + "sl_" + std::to_string(seed) + "s";
  const MapFiles files{base + "_doc_idx.npy", base + "_sample_idx.npy", base + "_shuffle_idx.npy"};

  bool build = !(file_exists(files.doc) && file_exists(files.sample) && file_exists(files.shuffle));
  if (build) {
    log(" > WARNING: could not find index map files, building the indices on rank 0 ...");
  } else {
    std::string why;
    try {
      why = check_maps(NpyArray(files.doc), NpyArray(files.sample), NpyArray(files.shuffle), *ds, begin, end, epochs,
                       tokens_per_epoch, seq_length);
    } catch (const UserError& e) {
      why = e.what();
    }
    if (!why.empty()) {
      log(" > WARNING: index map files %s_{doc,sample,shuffle}_idx.npy do not match the dataset (%s), "
          "rebuilding them ...", base.c_str(), why.c_str());
      build = true;
    }
  }

  if (build) {
    try {
      const LastEpochPlan plan = plan_last_epoch(epochs, tokens_per_epoch, seq_length, num_samples);
      if (epochs == 1) {
        log(" > only one epoch required, setting separate_last_epoch to False");
      } else {
        log(plan.separate ? " > last epoch number of samples (%lld) is smaller than 80%% of number of samples per "
                            "epoch (%lld), setting separate_last_epoch to True"
                          : " > last epoch number of samples (%lld) is larger than 80%% of number of samples per "
                            "epoch (%lld), setting separate_last_epoch to False",
            static_cast<long long>(plan.last_epoch_samples), static_cast<long long>(plan.samples_per_epoch));
      }
      auto start = Clock::now();
      const std::vector<int32_t> doc_idx = build_doc_idx(documents, epochs, rng, plan.separate);
      write_npy(files.doc, doc_idx.data(), {int64_t(doc_idx.size())});
      log(" > elasped time to build and save doc-idx mapping (seconds): %4f", seconds_since(start));

      start = Clock::now();
      if (epochs > std::numeric_limits<int32_t>::max()) fail("too many epochs for Megatron's sample index");
      const int64_t rows = (epochs * tokens_per_epoch - 1) / seq_length + 1;
      log("    using:");
      log("     number of documents:       %lld", static_cast<long long>(int64_t(doc_idx.size()) / epochs));
      log("     number of epochs:          %lld", static_cast<long long>(epochs));
      log("     sequence length:           %d", seq_length);
      log("     total number of samples:   %lld", static_cast<long long>(rows - 1));
      const std::vector<int32_t> sizes = ds->sizes();
      const std::vector<int32_t> sample_idx = build_sample_idx(sizes, doc_idx, seq_length, epochs, tokens_per_epoch);
      write_npy(files.sample, sample_idx.data(), {rows, 2});
      log(" > elasped time to build and save sample-idx mapping (seconds): %4f", seconds_since(start));

      start = Clock::now();
      const int64_t total = rows - 1;
      const int64_t first = plan.separate ? plan.samples_from_epochs_minus_one : total;
      log(" > building shuffle index with split [0, %lld) and [%lld, %lld) ...", static_cast<long long>(first),
          static_cast<long long>(first), static_cast<long long>(total));
      if (total >= int64_t(std::numeric_limits<uint32_t>::max()) - 1) {
        const auto shuffle = build_shuffle_idx<int64_t>(first, total, rng);
        write_npy(files.shuffle, shuffle.data(), {total});
      } else {
        const auto shuffle = build_shuffle_idx<uint32_t>(first, total, rng);
        write_npy(files.shuffle, shuffle.data(), {total});
      }
      log(" > elasped time to build and save shuffle-idx mapping (seconds): %4f", seconds_since(start));
    } catch (const UserError& e) {
      fail(std::string(e.what()) + " (while caching index maps; the data directory must be writable, or set a "
                                   "cache directory: Megatron's --data-cache-path)");
    }
  }

  const auto start = Clock::now();
  log(" > loading doc-idx mapping from %s", files.doc.c_str());
  auto doc = std::make_unique<NpyArray>(files.doc);
  log(" > loading sample-idx mapping from %s", files.sample.c_str());
  auto sample = std::make_unique<NpyArray>(files.sample);
  log(" > loading shuffle-idx mapping from %s", files.shuffle.c_str());
  auto shuffle = std::make_unique<NpyArray>(files.shuffle);
  log("    loaded indexed file in %3.3f seconds", seconds_since(start));
  log("    total number of samples: %lld", static_cast<long long>(sample->shape()[0]));
  log("    total number of epochs: %lld", static_cast<long long>(epochs));
  return std::make_unique<GptSplit>(ds, std::move(doc), std::move(sample), std::move(shuffle), seq_length);
}

// Megatron's _build_train_valid_test_datasets for one prefix.
std::array<std::unique_ptr<SampleSource>, 3> build_prefix(const std::string& prefix, const GptDataConfig& cfg,
                                                          const std::array<int64_t, 3>& samples, const Log& log) {
  log(" > building dataset index ...");
  const auto start = Clock::now();
  auto ds = std::make_shared<const IndexedDataset>(prefix);
  if (cfg.vocab_size > 0) ds->check_token_ids(cfg.vocab_size);
  log("    reading sizes...");
  log("    reading pointers...");
  log("    reading document index...");
  log("    creating numpy buffer of mmap...");
  log("    creating memory view of numpy buffer...");
  log(" > finished creating indexed dataset in %4f seconds", seconds_since(start));
  log("    number of documents: %lld", static_cast<long long>(ds->size()));

  const auto splits = train_valid_test_split(cfg.split, ds->size());
  log(" > dataset split:");
  const char* names[3] = {"train", "validation", "test"};
  for (size_t i = 0; i < 3; i++) {
    log("    %s:", names[i]);
    log("     document indices in [%lld, %lld) total of %lld documents", static_cast<long long>(splits[i]),
        static_cast<long long>(splits[i + 1]), static_cast<long long>(splits[i + 1] - splits[i]));
  }
  std::string cache_prefix = prefix;
  if (!cfg.cache_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cfg.cache_dir, ec);
    if (ec) fail("cannot create the data cache directory '" + cfg.cache_dir + "': " + ec.message());
    cache_prefix = cfg.cache_dir + "/" + basename_of(prefix);
  }
  std::array<std::unique_ptr<SampleSource>, 3> out;
  const char* split_names[3] = {"train", "valid", "test"};
  for (size_t i = 0; i < 3; i++) {
    if (splits[i + 1] > splits[i] && samples[i] > 0)
      out[i] = build_split(split_names[i], cache_prefix, ds, splits[i], splits[i + 1], samples[i], cfg.seq_length,
                           cfg.seed, log);
  }
  return out;
}

}  // namespace

GptDatasets build_gpt_datasets(const GptDataConfig& cfg) {
  require(!cfg.data_path.empty(), "--data-path is required (the prefix of a .bin/.idx pair from 'loom preprocess')");
  require(cfg.seq_length > 1, "--seq-length must be at least 2");
  require(cfg.train_samples >= 0 && cfg.valid_samples >= 0 && cfg.test_samples >= 0, "sample counts must be >= 0");
  if (cfg.seed > 0xFFFFFFFFull) fail("--seed must be between 0 and 2**32 - 1 (numpy RandomState)");
  const Log log(cfg.quiet);
  const std::array<int64_t, 3> samples{cfg.train_samples, cfg.valid_samples, cfg.test_samples};
  // Validate the --data-path shape before printing anything.
  const auto [prefixes, weights] = parse_data_path(cfg.data_path);
  train_valid_test_split(cfg.split, 1);  // a bad --split fails here, before any work

  log("> building train, validation, and test datasets ...");
  log(" > datasets target sizes (minimum size):");
  log("    train:      %lld", static_cast<long long>(samples[0]));
  log("    validation: %lld", static_cast<long long>(samples[1]));
  log("    test:       %lld", static_cast<long long>(samples[2]));
  log("> building train, validation, and test datasets for GPT ...");
  GptDatasets result;
  if (prefixes.size() == 1 && weights.empty()) {
    auto parts = build_prefix(prefixes[0], cfg, samples, log);
    result.train = std::move(parts[0]);
    result.valid = std::move(parts[1]);
    result.test = std::move(parts[2]);
  } else {
    const BlendPlan plan = plan_blend(weights, samples);
    std::array<std::vector<std::unique_ptr<SampleSource>>, 3> parts;
    for (size_t i = 0; i < prefixes.size(); i++) {
      auto built = build_prefix(prefixes[i], cfg, plan.samples[i], log);
      for (size_t s = 0; s < 3; s++)
        if (built[s]) parts[s].push_back(std::move(built[s]));
    }
    std::unique_ptr<SampleSource>* outs[3] = {&result.train, &result.valid, &result.test};
    for (size_t s = 0; s < 3; s++) {
      if (parts[s].empty()) continue;
      // Megatron blends with all weights even when a dataset contributed no split (it asserts they
      // match); a split missing from some datasets would make that assertion fail.
      if (parts[s].size() != prefixes.size())
        fail("--data-path: the " + std::string(s == 0 ? "train" : s == 1 ? "validation" : "test") +
             " split is empty in some of the blended datasets but not all (Megatron cannot blend that either)");
      *outs[s] = std::make_unique<Blended>(std::move(parts[s]), plan.weights, log);
    }
  }
  log("> finished creating GPT datasets ...");
  return result;
}

TargetSamples megatron_target_samples(int64_t train_iters, int64_t global_batch, int64_t eval_interval,
                                      int64_t eval_iters, int64_t train_samples) {
  require(eval_interval > 0, "--eval-interval must be positive");
  TargetSamples t;
  t.train = train_samples > 0 ? train_samples : train_iters * global_batch;
  t.valid = (train_iters / eval_interval + 1) * eval_iters * global_batch;
  t.test = eval_iters * global_batch;
  return t;
}

void make_lm_batch(const int32_t* samples, int batch, int seq_length, const BatchOptions& o, int32_t* tokens,
                   int32_t* labels, float* loss_mask, int32_t* position_ids, int32_t* doc_start) {
  for (int b = 0; b < batch; b++) {
    const int32_t* s = samples + size_t(b) * size_t(seq_length + 1);
    const size_t row = size_t(b) * size_t(seq_length);
    int32_t start = 0;  // first position of the current document
    for (int t = 0; t < seq_length; t++) {
      const int32_t tok = s[t];
      tokens[row + size_t(t)] = tok;
      labels[row + size_t(t)] = s[t + 1];
      loss_mask[row + size_t(t)] = (o.eod_mask_loss && tok == o.eod) ? 0.0f : 1.0f;
      position_ids[row + size_t(t)] = o.reset_position_ids ? t - start : t;
      if (doc_start) doc_start[row + size_t(t)] = o.reset_attention_mask ? start : 0;
      if (tok == o.eod) start = t + 1;  // positions after an EOD belong to the next document
    }
  }
}

int64_t predicted_index_map_bytes(const GptDataConfig& cfg) {
  if (cfg.data_path.empty() || cfg.seq_length < 2) return 0;
  const std::array<int64_t, 3> samples{cfg.train_samples, cfg.valid_samples, cfg.test_samples};
  const auto [prefixes, weights] = parse_data_path(cfg.data_path);
  std::vector<std::array<int64_t, 3>> per_prefix(prefixes.size(), samples);
  int64_t bytes = 0;
  if (!weights.empty()) {
    per_prefix = plan_blend(weights, samples).samples;
    for (int64_t s : samples) bytes += s * 9;  // blending: dataset (uint8) and sample (int64) per sample
  }
  for (size_t p = 0; p < prefixes.size(); p++) {
    const IndexedDataset ds(prefixes[p]);
    const auto splits = train_valid_test_split(cfg.split, ds.size());
    for (size_t i = 0; i < 3; i++) {
      if (splits[i + 1] <= splits[i] || per_prefix[p][i] <= 0) continue;
      int64_t tokens = 0;
      for (int64_t d = splits[i]; d < splits[i + 1]; d++) tokens += ds.sequence_length(d);
      if (tokens <= 1) continue;  // build_gpt_datasets reports it
      const int64_t epochs = num_epochs(tokens, cfg.seq_length, per_prefix[p][i]);
      bytes += split_map_bytes(epochs, splits[i + 1] - splits[i], tokens, cfg.seq_length);
    }
  }
  return bytes;
}

}  // namespace loom::data
