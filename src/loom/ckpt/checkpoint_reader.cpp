#include "loom/ckpt/checkpoint_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/data/files.h"
#include "loom/core/tensor.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace loom {
namespace {

// nlohmann's get<integer>() of a float, or of a number beyond the type, is a C++ cast: undefined behaviour
// (fuzz_checkpoint: a shape of 3.3e124). The metadata's integers are checked before they are taken; a bad
// one is a json exception like any other malformed field.
template <class T>
T integer(const json& v) {
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                    : v.is_number_integer()
                        ? v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                              (uint64_t(std::numeric_limits<T>::max()) > uint64_t(INT64_MAX) ||
                               v.get<int64_t>() <= int64_t(std::numeric_limits<T>::max()))
                        : false;
  if (!fits) throw json::type_error::create(302, "expected an integer in range, found " + v.dump(), &v);
  return v.is_number_unsigned() ? T(v.get<uint64_t>()) : T(v.get<int64_t>());
}

std::vector<int64_t> integers(const json& v) {
  if (!v.is_array()) throw json::type_error::create(302, "expected a list of integers, found " + v.dump(), &v);
  std::vector<int64_t> out;
  for (const json& x : v) out.push_back(integer<int64_t>(x));
  return out;
}

// A rectangle of a tensor seen as 2-D [rows, cols] (1-D tensors are one column).
struct Region {
  int64_t r0, r1, c0, c1;
};

Region region_of(const std::vector<int64_t>& global, int dim, int64_t offset, const std::vector<int64_t>& local) {
  const int64_t cols = global.size() > 1 ? global[1] : 1;
  const int64_t rows = global.empty() ? 1 : global[0];
  Region r{0, rows, 0, cols};
  if (dim == 0) r = {offset, offset + local[0], 0, cols};
  if (dim == 1) r = {0, rows, offset, offset + local[1]};
  return r;
}

}  // namespace

std::string iteration_dir(const std::string& dir, int64_t iteration) {
  char name[32];
  std::snprintf(name, sizeof name, "iter_%07lld", (long long)iteration);
  return (fs::path(dir) / name).string();
}

std::string checkpoint_iteration_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(dir) / "metadata.json", ec)) return dir;
  const fs::path latest = fs::path(dir) / "latest_checkpointed_iteration.txt";
  if (!fs::is_directory(dir, ec)) fail("checkpoint directory " + dir + " does not exist");
  std::ifstream f(latest);
  if (!f) fail(dir + " holds no latest_checkpointed_iteration.txt: not a checkpoint written by 'loom train --save'");
  std::string text;
  std::getline(f, text);
  int64_t iteration = -1;
  try {
    size_t used = 0;
    iteration = std::stoll(text, &used);
    if (used != text.size()) iteration = -1;
  } catch (...) {
  }
  if (iteration < 0) fail(latest.string() + ": expected an iteration number, found '" + text + "'");
  const std::string it = iteration_dir(dir, iteration);
  if (!fs::is_regular_file(fs::path(it) / "metadata.json", ec))
    fail(latest.string() + " names iteration " + text + " but " + it + "/metadata.json is missing");
  return it;
}

std::map<std::string, std::string> checkpoint_info(const std::string& iteration_dir) {
  const std::string path = (fs::path(iteration_dir) / "metadata.json").string();
  json meta;
  try {
    meta = json::parse(data::read_whole_file(path, "checkpoint metadata"));
    return meta.at("args").get<std::map<std::string, std::string>>();
  } catch (const json::exception& e) {
    fail(path + ": malformed checkpoint metadata: " + e.what());
  }
}

CheckpointReader::CheckpointReader(std::string iteration_dir)
    : dir_(std::move(iteration_dir)), meta_path_((fs::path(dir_) / "metadata.json").string()), meta_(std::make_unique<json>()) {
  try {
    *meta_ = json::parse(data::read_whole_file(meta_path_, "checkpoint metadata"));
  } catch (const json::exception& e) {
    fail(meta_path_ + ": malformed checkpoint metadata: " + e.what());
  }
}

CheckpointReader::~CheckpointReader() = default;

SafetensorsFile& CheckpointReader::file(const std::string& name) {
  auto& f = files_[name];
  if (!f) {
    const std::string path = (fs::path(dir_) / name).string();
    const auto& rec = meta_->at("files").at(name);
    if (!fs::is_regular_file(path)) fail("checkpoint shard " + path + " is missing");
    if (fs::file_size(path) != integer<uint64_t>(rec.at("bytes")))
      fail("checkpoint shard " + path + " has " + std::to_string(fs::file_size(path)) + " bytes, expected " +
           std::to_string(integer<uint64_t>(rec.at("bytes"))) + " (truncated?)");
    if (file_crc32(path) != integer<uint32_t>(rec.at("crc32")))
      fail("checkpoint shard " + path + " fails its CRC-32 check (corrupted)");
    f = std::make_unique<SafetensorsFile>(path);
  }
  return *f;
}

void CheckpointReader::read(const std::string& key, const std::vector<int64_t>& global_shape, int split_dim,
                            int64_t offset, const std::vector<int64_t>& local_shape, float* dst, int64_t keep_rows) {
  try {
    const json& tensors = meta_->at("tensors");
    if (!tensors.contains(key)) fail(meta_path_ + ": the checkpoint has no tensor '" + key + "'");
    const json& rec = tensors[key];
    const auto global = integers(rec.at("global_shape"));
    int64_t rows_kept = global_shape.empty() ? 1 : global_shape[0];  // rows of the model's tensor read from here
    if (global != global_shape) {
      const bool repad = keep_rows > 0 && global.size() == 2 && global_shape.size() == 2 &&
                         global[1] == global_shape[1] && global[0] >= keep_rows && global_shape[0] >= keep_rows;
      if (!repad)
        fail(meta_path_ + ": tensor '" + key + "' has shape " + shape_to_string(global) + " but the model needs " +
             shape_to_string(global_shape) + " (a checkpoint of a different model shape?)");
      rows_kept = keep_rows;
    }
    const Region want = region_of(global_shape, split_dim, offset, local_shape);
    const int64_t want_cols = want.c1 - want.c0;
    int64_t filled = 0, numel = 1;
    for (auto d : local_shape) numel *= d;
    // Which elements of the slice some shard has filled: a damaged map may list overlapping shards, whose
    // areas could add up to the slice's while leaving part of it unread.
    std::vector<uint8_t> covered(size_t(numel), 0);
    // Padding rows of the new size: zero.
    for (int64_t r = std::max(want.r0, rows_kept); r < want.r1; r++) {
      std::memset(dst + (r - want.r0) * want_cols, 0, sizeof(float) * size_t(want_cols));
      std::memset(covered.data() + (r - want.r0) * want_cols, 1, size_t(want_cols));
      filled += want_cols;
    }
    for (const auto& sh : rec.at("shards")) {
      const auto shape = integers(sh.at("shape"));
      const int dim = integer<int>(sh.at("dim"));
      const int64_t at = integer<int64_t>(sh.at("offset"));
      // A stored slice is the whole tensor (dim -1) or a run of its rows (0) or columns (1) inside it;
      // anything else would be read outside the shard's data.
      bool fits = shape.size() == global.size() && dim >= -1 && dim <= 1 && dim < int(global.size());
      for (size_t d = 0; fits && d < global.size(); d++)
        fits = int(d) == dim ? shape[d] >= 0 && at >= 0 && at <= global[d] - shape[d] : shape[d] == global[d];
      if (!fits || (dim < 0 && at != 0))
        fail(meta_path_ + ": a shard of '" + key + "' (shape " + shape_to_string(shape) + ", dim " + std::to_string(dim) +
             ", offset " + std::to_string(at) + ") does not fit the tensor's shape " + shape_to_string(global));
      const Region have = region_of(global, dim, at, shape);
      const Region x{std::max(want.r0, have.r0), std::min({want.r1, have.r1, rows_kept}), std::max(want.c0, have.c0),
                     std::min(want.c1, have.c1)};
      if (x.r0 >= x.r1 || x.c0 >= x.c1) continue;
      const TensorEntry& t = file(sh.at("file").get<std::string>()).get(key);
      if (t.dtype != DType::F32 || t.shape != shape) fail(meta_path_ + ": shard of '" + key + "' does not match its record");
      const float* src = static_cast<const float*>(t.data);
      const int64_t have_cols = have.c1 - have.c0;
      for (int64_t r = x.r0; r < x.r1; r++) {
        const int64_t row = (r - want.r0) * want_cols + (x.c0 - want.c0);
        for (int64_t c = 0; c < x.c1 - x.c0; c++)
          if (covered[size_t(row + c)]++) fail(meta_path_ + ": shards of '" + key + "' overlap");
        std::memcpy(dst + row, src + (r - have.r0) * have_cols + (x.c0 - have.c0), sizeof(float) * size_t(x.c1 - x.c0));
      }
      filled += (x.r1 - x.r0) * (x.c1 - x.c0);
    }
    if (filled != numel) fail(meta_path_ + ": the checkpoint does not cover all of tensor '" + key + "'");
  } catch (const json::exception& e) {
    fail(meta_path_ + ": malformed checkpoint metadata: " + e.what());
  }
}

}  // namespace loom
