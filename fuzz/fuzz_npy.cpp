// Cached .npy index maps: the input is `<doc_idx.npy>` SEP `<sample_idx.npy>` SEP `<shuffle_idx.npy>`,
// written under the cache names build_gpt_datasets() looks for next to a small fixed dataset. The real
// path then checks them against the dataset (rebuilding them when they do not fit) and every sample of
// every split is read through them. A lone NpyArray of the first part is opened too.
#include "fuzz_util.h"
#include "loom/data/gpt_data.h"
#include "loom/data/indexed_dataset.h"
#include "loom/data/numpy_compat.h"

namespace {

using namespace loom;

constexpr int kSeqLength = 8;
constexpr int64_t kTrainSamples = 6;

// 5 documents of 3..11 tokens; the split "1,0,0" puts all of them in train.
std::string make_dataset() {
  const std::string prefix = fuzz::scratch_path("maps");
  data::IndexedDatasetWriter w(prefix, data::kDtypeUint16);
  int32_t next = 0;
  for (int d = 0; d < 5; d++) {
    std::vector<int32_t> ids(size_t(3 + 2 * d));
    for (auto& v : ids) v = next++;
    w.add_item(ids.data(), ids.size());
    w.end_document();
  }
  w.finalize();
  return prefix;
}

data::GptDataConfig config(const std::string& prefix) {
  data::GptDataConfig c;
  c.data_path = {prefix};
  c.split = "1,0,0";
  c.seq_length = kSeqLength;
  c.seed = 1234;
  c.train_samples = kTrainSamples;
  c.quiet = true;
  return c;
}

}  // namespace

// Seeds: the maps Loom itself writes for this dataset (LOOM_FUZZ_WRITE_SEED=FILE writes them as one input).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("LOOM_FUZZ_WRITE_SEED")) {
    const std::string prefix = make_dataset();
    data::build_gpt_datasets(config(prefix));
    const std::string base = prefix + "_train_indexmap_" + std::to_string(kTrainSamples) + "ns_" +
                             std::to_string(kSeqLength) + "sl_1234s";
    std::string seed;
    for (const char* m : {"_doc_idx.npy", "_sample_idx.npy", "_shuffle_idx.npy"}) {
      if (!seed.empty()) seed += fuzz::kPartSeparator;
      seed += data::read_whole_file(base + m, "map");
    }
    fuzz::write_file(out, seed);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string prefix = make_dataset();
  const auto parts = fuzz::split_parts(data, size, 3);
  const std::string base = prefix + "_train_indexmap_" + std::to_string(kTrainSamples) + "ns_" +
                           std::to_string(kSeqLength) + "sl_1234s";
  fuzz::write_file(base + "_doc_idx.npy", parts[0]);
  fuzz::write_file(base + "_sample_idx.npy", parts[1]);
  fuzz::write_file(base + "_shuffle_idx.npy", parts[2]);
  fuzz::expect_user_errors_only([&] {
    const data::NpyArray a(base + "_doc_idx.npy");
    uint64_t sum = 0;  // unsigned: the values are the input's, and the target's own sum must not overflow
    for (int64_t i = 0; i < a.size() && i < 4096; i++) sum += uint64_t(a.at(i));
    if (sum == 42) std::fputc('\0', stderr);
  });
  // build_gpt_datasets() may rewrite the maps; the next input writes its own again.
  fuzz::expect_user_errors_only([&] {
    const data::GptDatasets sets = data::build_gpt_datasets(config(prefix));
    if (!sets.train) std::abort();
    std::vector<int32_t> tokens(kSeqLength + 1);
    for (int64_t i = 0; i < sets.train->size(); i++) sets.train->get(i, tokens.data());
  });
  return 0;
}
