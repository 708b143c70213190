#pragma once
// The read side of one checkpoint iteration directory (checkpoint.h), without a model: metadata.json
// parsed, each shard file opened on first use once its size and CRC-32 match the metadata, and any slice
// of a tensor assembled from the stored slices that overlap it. load_checkpoint() reads through this;
// so does the fuzz target fuzz/fuzz_checkpoint.cpp. Every problem is a UserError naming the file.
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace loom {

class SafetensorsFile;

std::string iteration_dir(const std::string& dir, int64_t iteration);  // DIR/iter_0000100
// The iteration directory a --load path stands for (newest when given the checkpoint root).
std::string checkpoint_iteration_dir(const std::string& dir);
// The "args" map recorded at save time.
std::map<std::string, std::string> checkpoint_info(const std::string& iteration_dir);

class CheckpointReader {
 public:
  explicit CheckpointReader(std::string iteration_dir);  // parses DIR/metadata.json
  ~CheckpointReader();
  const nlohmann::json& meta() const { return *meta_; }
  const std::string& meta_path() const { return meta_path_; }
  // Fills `dst` (row-major, `local_shape`) with the part of tensor `key` a rank holds: the whole tensor
  // (split_dim -1) or rows (0) / columns (1) [offset, offset + local_shape[dim]) of `global_shape`.
  // keep_rows >= 0: a vocabulary-sized matrix padded to another row count (another TP): its first keep_rows
  // rows (the tokenizer's) come from the checkpoint whatever its padding, the model's further rows are zero.
  void read(const std::string& key, const std::vector<int64_t>& global_shape, int split_dim, int64_t offset,
            const std::vector<int64_t>& local_shape, float* dst, int64_t keep_rows = -1);

 private:
  SafetensorsFile& file(const std::string& name);
  std::string dir_, meta_path_;
  std::unique_ptr<nlohmann::json> meta_;
  std::map<std::string, std::unique_ptr<SafetensorsFile>> files_;
};

}  // namespace loom
