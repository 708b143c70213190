#include "loom/ckpt/weights_dir.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"

namespace fs = std::filesystem;

namespace loom {

std::string iteration_dir(const std::string& dir, int64_t iteration) {
  char name[32];
  std::snprintf(name, sizeof name, "iter_%07lld", (long long)iteration);
  return (fs::path(dir) / name).string();
}

std::string save_weights_dir(const std::string& dir, int64_t iteration, const ParamStore& params,
                             const std::map<std::string, std::string>& meta, const TensorParallel& tp) {
  const std::string it = iteration_dir(dir, iteration);
  const std::string file = (fs::path(it) / "model.safetensors").string();
  if (tp.rank != 0) {
    save_weights(file, params, meta, tp);  // contributes its shards
    return file;
  }
  std::error_code ec;
  fs::create_directories(it, ec);
  if (ec) fail("cannot create " + it + ": " + ec.message());
  save_weights(file, params, meta, tp);
  write_file_atomic((fs::path(dir) / "latest_checkpointed_iteration.txt").string(), std::to_string(iteration));
  return file;
}

std::string resolve_weights(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (!fs::is_directory(path, ec)) fail("no weights at " + path + " (expected a .safetensors file or a --save directory)");
  const fs::path latest = fs::path(path) / "latest_checkpointed_iteration.txt";
  std::ifstream f(latest);
  if (!f) fail(path + " holds no latest_checkpointed_iteration.txt: not a directory written by 'loom train --save'");
  std::string text;
  std::getline(f, text);
  if (text == "release") return (fs::path(path) / "release" / "model.safetensors").string();
  int64_t iteration = -1;
  try {
    size_t used = 0;
    iteration = std::stoll(text, &used);
    if (used != text.size()) iteration = -1;
  } catch (...) {
  }
  if (iteration < 0) fail(latest.string() + ": expected an iteration number, found '" + text + "'");
  const std::string file = (fs::path(iteration_dir(path, iteration)) / "model.safetensors").string();
  if (!fs::is_regular_file(file, ec)) fail(latest.string() + " names iteration " + text + " but " + file + " is missing");
  return file;
}

}  // namespace loom
