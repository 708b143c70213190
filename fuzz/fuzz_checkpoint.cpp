// Checkpoint metadata and tensor map (`loom train --load DIR`, `loom generate/convert --load DIR`): the
// input is `<latest_checkpointed_iteration.txt>` SEP `<iter_0000010/metadata.json>`. DIR/iter_0000010 also
// holds two real shard files (written at start-up): model/w [4, 6] split by rows over both, model/c [6, 4]
// split by columns, model/b [6] whole in the first. The directory is resolved and read through
// CheckpointReader as load_checkpoint() does, for the slices a one-process and a two-way tensor-parallel
// rank would take; every value read must be one the shards hold.
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "loom/ckpt/checkpoint_reader.h"
#include "loom/ckpt/safetensors.h"

namespace {

using namespace loom;
using nlohmann::json;

struct Fixture {
  std::string dir, it;
  json meta;  // what the saver writes for these shards
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = fuzz::scratch_path("ckpt");
    x.it = x.dir + "/iter_0000010";
    std::filesystem::create_directories(x.it);
    // Values 1..N per tensor, so a read can be checked to land on stored data (never 0, never garbage).
    static std::vector<std::vector<float>> data;
    auto values = [](size_t n, float base) {
      std::vector<float> v(n);
      for (size_t i = 0; i < n; i++) v[i] = base + float(i);
      return v;
    };
    json files = json::object(), tensors = json::object();
    for (int shard = 0; shard < 2; shard++) {
      const std::string name = "shard_tp0" + std::to_string(shard) + "_pp000.safetensors";
      std::vector<TensorEntry> entries;
      auto add = [&](const std::string& key, std::vector<int64_t> global, std::vector<int64_t> shape, int dim,
                     int64_t offset, float base) {
        size_t n = 1;
        for (auto d : shape) n *= size_t(d);
        data.push_back(values(n, base));
        entries.push_back({key, DType::F32, shape, data.back().data(), n * 4});
        tensors[key]["global_shape"] = global;
        tensors[key]["shards"].push_back({{"file", name}, {"shape", shape}, {"dim", dim}, {"offset", offset}});
      };
      add("model/w", {4, 6}, {2, 6}, 0, 2 * shard, 1.f + 100.f * float(shard));
      add("model/c", {6, 4}, {6, 2}, 1, 2 * shard, 1.f + 100.f * float(shard));
      if (shard == 0) add("model/b", {6}, {6}, -1, 0, 1.f);
      const uint32_t crc = write_safetensors(x.it + "/" + name, entries);
      files[name] = {{"crc32", crc}, {"bytes", std::filesystem::file_size(x.it + "/" + name)}};
    }
    x.meta = {{"format", "loom-checkpoint"}, {"version", 1}, {"iteration", 10}, {"consumed_train_samples", 80},
              {"consumed_valid_samples", 0}, {"scheduler_steps", 80}, {"optimizer_steps", 10},
              {"has_optimizer", false},
              {"layout", {{"tensor_model_parallel_size", 2}, {"pipeline_model_parallel_size", 1}, {"data_parallel_size", 1}}},
              {"args", {{"num_layers", "1"}}}, {"files", files}, {"tensors", tensors}};
    return x;
  }();
  return f;
}

struct Read {
  const char* key;
  std::vector<int64_t> global;
  int dim;
  int64_t offset;
  std::vector<int64_t> local;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("LOOM_FUZZ_WRITE_SEED"))
    fuzz::write_file(out, "10" + std::string(fuzz::kPartSeparator) + fixture().meta.dump(1));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  const auto parts = fuzz::split_parts(data, size, 2);
  fuzz::write_file(f.dir + "/latest_checkpointed_iteration.txt", parts[0]);
  fuzz::write_file(f.it + "/metadata.json", parts[1]);
  static const std::vector<Read> reads = {
      {"model/w", {4, 6}, -1, 0, {4, 6}}, {"model/w", {4, 6}, 0, 2, {2, 6}}, {"model/c", {6, 4}, -1, 0, {6, 4}},
      {"model/c", {6, 4}, 1, 0, {6, 2}},  {"model/c", {6, 4}, 1, 2, {6, 2}}, {"model/b", {6}, -1, 0, {6}},
  };
  fuzz::expect_user_errors_only([&] {
    const std::string it = checkpoint_iteration_dir(f.dir);
    (void)checkpoint_info(it);
  });
  fuzz::expect_user_errors_only([&] {
    CheckpointReader reader(checkpoint_iteration_dir(f.dir));
    for (const Read& r : reads) {
      size_t n = 1;
      for (auto d : r.local) n *= size_t(d);
      std::vector<float> dst(n, 0.f);
      fuzz::expect_user_errors_only([&] {
        reader.read(r.key, r.global, r.dim, r.offset, r.local, dst.data());
        for (float v : dst)  // stored values are 1..12 and 101..112
          if (!(v >= 1.f && v <= 112.f && v == std::floor(v))) std::abort();
      });
    }
  });
  return 0;
}
