#pragma once
// GPT training data as Megatron-LM builds it: train/valid/test samples of seq_length + 1 tokens
// from one or several weighted Megatron indexed datasets.
//
// The algorithm is Megatron-LM's legacy GPT dataset at commit 68797d9 (2021-08-18), the version that
// produced reference log 002 (megatron/data/gpt_dataset.py `_build_index_mappings`, helpers.cpp,
// blendable_dataset.py; see gpt_index.h):
//  - documents (= sequences of the .idx) are split by --split into contiguous train/valid/test ranges;
//  - per split, enough epochs for the requested samples; doc_idx = the split's documents repeated
//    per epoch and shuffled with np.random.RandomState(seed) (the last epoch separately when it
//    contributes < 80% of an epoch's samples); sample_idx = (doc_idx position, offset) of every
//    sample start; shuffle_idx = shuffled sample order;
//  - these are cached as `<prefix>_<split>_indexmap_<N>ns_<L>sl_<seed>s_{doc,sample,shuffle}_idx.npy`
//    (next to the data, or in cache_dir), reused by later runs (Megatron's names and .npy dtypes, so
//    files from Megatron are reused too). Cached files are checked against the dataset first and
//    rebuilt when they do not fit it. Files are written atomically.
//  - with several datasets, each is built with ceil(n * weight * 1.005) samples per split, and they
//    are interleaved by build_blending_indices; the blend has sum(len(parts)) samples, as in 2021.
// Unless quiet, prints Megatron's log lines from "> building train, validation, and test
// datasets ..." through "> finished creating GPT datasets ..." to stdout (rank 0's job: pass quiet
// on other ranks).
//
// Departures: a split with 0 requested samples is not built (null), where Megatron builds and caches
// a one-epoch index it never reads; nothing else.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loom::data {

struct GptDataConfig {
  std::vector<std::string> data_path;  // Megatron's --data-path list: [w1 p1 w2 p2 ...] or [p1]
  std::string split = "969, 30, 1";
  int seq_length = 1024;
  uint64_t seed = 1234;
  int64_t train_samples = 0, valid_samples = 0, test_samples = 0;
  std::string cache_dir;  // empty: next to the data
  int64_t vocab_size = 0;  // the tokenizer's; when > 0 every token id of every dataset must be below it
  bool quiet = false;     // suppress Megatron-style build log lines
};

class SampleSource {  // one split (train, valid or test)
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;                             // number of samples
  virtual void get(int64_t index, int32_t* tokens) const = 0;  // writes seq_length+1 token ids
};

struct GptDatasets {
  std::unique_ptr<SampleSource> train, valid, test;  // null where 0 samples (or no documents)
};

// Thread-safe to call get() concurrently on the returned sources. Every problem with the inputs
// (missing or damaged files, bad --split/--data-path, a split without tokens) is a UserError.
GptDatasets build_gpt_datasets(const GptDataConfig&);

// Bytes of the doc/sample/shuffle (and blending) index maps build_gpt_datasets holds for cfg, from the
// .idx files alone (the memory preflight's share for the data). Assumes the inputs are valid.
int64_t predicted_index_map_bytes(const GptDataConfig& cfg);

// Megatron's target sample counts (training.py build_train_valid_test_data_iterators):
// train = train_samples if given else train_iters * global_batch;
// valid = (train_iters // eval_interval + 1) * eval_iters * global_batch; test = eval_iters * global_batch.
struct TargetSamples {
  int64_t train = 0, valid = 0, test = 0;
};
TargetSamples megatron_target_samples(int64_t train_iters, int64_t global_batch, int64_t eval_interval,
                                      int64_t eval_iters, int64_t train_samples = 0);

// Megatron's get_batch + get_ltor_masks_and_position_ids. `samples` is batch rows of seq_length + 1
// ids; outputs are batch x seq_length:
//   tokens = sample[:-1], labels = sample[1:];
//   loss_mask = 1, or 0 where the *input token* is EOD when eod_mask_loss;
//   position_ids = t, or with reset_position_ids t - (position after the last EOD before t).
// Attention: Megatron's reset_attention_mask hides, from every row after an EOD at position i, all
// keys at positions <= i. That is a causal mask restricted to the row's own document, so instead of a
// [b, s, s] mask we give per row the first key it may see: if doc_start is not null it receives
// batch x seq_length values, doc_start[b][t] = 1 + (position of the last EOD before t) (0 if none)
// when reset_attention_mask, else 0. A causal kernel then lets query t attend keys
// doc_start[b][t] <= k <= t, which equals Megatron's mask exactly.
struct BatchOptions {
  int32_t eod = 50256;
  bool eod_mask_loss = false, reset_position_ids = false, reset_attention_mask = false;
};
void make_lm_batch(const int32_t* samples, int batch, int seq_length, const BatchOptions&, int32_t* tokens,
                   int32_t* labels, float* loss_mask, int32_t* position_ids, int32_t* doc_start = nullptr);

}  // namespace loom::data
