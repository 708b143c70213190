#pragma once
// The data of `loom train`: Megatron's GPT train/valid/test datasets over --data-path (blended by weight,
// split by --split, sized for the iterations that will read them), as the SampleSets the trainer reads.
#include <cstdint>
#include <string>
#include <vector>

#include "loom/data/gpt_data.h"
#include "loom/train/batch.h"

namespace loom {

struct TrainArgs;

struct TrainingData {
  data::GptDatasets datasets;  // what the sets read from
  SampleSet train, valid, test;  // size 0 where a split has no samples
};

// Every prefix of --data-path ("prefix", or "w1 prefix1 w2 prefix2 ...") has its .bin and .idx, checked
// before any work (UserError otherwise).
void check_data_prefixes(const std::vector<std::string>& data_path);

// Builds the datasets (their index maps cached as Megatron does); `quiet` silences the build lines (all
// ranks but 0). Every problem with the data, an empty training split or a token id outside the
// tokenizer's `vocab_size` included, is a UserError. With --dataloader-type cyclic every split is read
// through Megatron's random sampler over `dp_size` data-parallel ranks (data/random_sampler.h).
TrainingData build_training_data(const TrainArgs& a, int64_t vocab_size, bool quiet, int dp_size = 1);

// What build_training_data's index maps will hold in memory (for the memory preflight), with the cyclic
// loader's per-epoch permutations (8 bytes a sample of each split's target, over `dp_size` ranks when sharded).
int64_t predicted_index_map_bytes(const TrainArgs& a, int dp_size = 1);

}  // namespace loom
