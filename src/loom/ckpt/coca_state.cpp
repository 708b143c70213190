#include "loom/ckpt/coca_state.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/data/files.h"

namespace loom {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// nlohmann's get<int64_t>() / get<uint32_t>() cast whatever number is there: a float outside the type's
// range is undefined behaviour and an integer outside it wraps. The saver writes integers; anything else
// is refused.
int64_t get_int64(const json& v, const std::string& what, const std::string& path) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    fail(path + ": " + what + " " + v.dump() + " is out of range");
  if (!v.is_number_integer()) fail(path + ": " + what + " " + v.dump() + " is not an integer");
  return v.get<int64_t>();
}

int64_t value_int64(const json& o, const char* key, const std::string& path) {
  return o.contains(key) ? get_int64(o.at(key), key, path) : 0;
}

uint64_t get_uint64(const json& v, const std::string& what, const std::string& path) {
  if (!v.is_number_unsigned()) fail(path + ": " + what + " " + v.dump() + " is not a non-negative integer");
  return v.get<uint64_t>();
}

}  // namespace

CocaTrainState read_coca_state(const std::string& dir, const json& want_shape) {
  const std::string state_path = (fs::path(dir) / "state.json").string();
  json s;
  try {
    s = json::parse(data::read_whole_file(state_path, "CoCa checkpoint state"));
  } catch (const json::exception& e) {
    fail(state_path + ": malformed JSON: " + e.what());
  }
  CocaTrainState st;
  try {
    if (s.at("format") != "loom-coca-checkpoint" || !s.at("version").is_number_integer() ||
        s.at("version").get<int64_t>() != kCocaCheckpointFormatVersion)
      fail(state_path + ": not a loom CoCa checkpoint of format version " + std::to_string(kCocaCheckpointFormatVersion));
    const json& have = s.at("shape");
    for (const auto& [key, value] : want_shape.items())
      if (!have.contains(key) || have[key] != value)
        fail("checkpoint " + dir + " was trained with " + key + " = " + (have.contains(key) ? have[key].dump() : "?") +
             ", this run has " + value.dump());
    for (const auto& [file, rec] : s.at("files").items()) {
      const std::string p = (fs::path(dir) / file).string();
      std::error_code ec;
      // A regular file: file_size of a directory ("" or ".") throws std::filesystem_error.
      if (!fs::is_regular_file(p, ec)) fail("checkpoint " + dir + " lacks " + file);
      const uint64_t bytes = get_uint64(rec.at("bytes"), file + " bytes", state_path);
      const uint64_t crc = get_uint64(rec.at("crc32"), file + " crc32", state_path);
      if (fs::file_size(p) != bytes)
        fail(p + " has " + std::to_string(fs::file_size(p)) + " bytes, the checkpoint recorded " +
             rec.at("bytes").dump() + " (truncated or replaced)");
      if (crc > 0xffffffffu || file_crc32(p) != uint32_t(crc)) fail(p + " is corrupt (CRC-32 differs from the recorded one)");
    }
    st.epoch = value_int64(s, "epoch", state_path);
    st.step = value_int64(s, "step", state_path);
    st.batch_in_epoch = value_int64(s, "batch_in_epoch", state_path);
    st.optimizer_steps = value_int64(s, "optimizer_steps", state_path);
    if (s.contains("loss_scaler")) {
      const json& ls = s.at("loss_scaler");
      if (!ls.is_object()) fail(state_path + ": loss_scaler is not an object");
      st.has_scaler = true;
      if (ls.contains("scale")) {
        const json& v = ls.at("scale");
        // A float's range: converting a larger double to float is undefined behaviour.
        if (!v.is_number() || !std::isfinite(v.get<double>()) ||
            std::fabs(v.get<double>()) > double(std::numeric_limits<float>::max()))
          fail(state_path + ": loss_scaler scale " + v.dump() + " is not a finite float");
        st.scaler.scale = v.get<float>();
      }
      st.scaler.growth_tracker = value_int64(ls, "growth_tracker", state_path);
      st.scaler.hysteresis_tracker = value_int64(ls, "hysteresis_tracker", state_path);
    }
    st.loader = s.value("loader", json::object());
  } catch (const json::exception& e) {
    fail(state_path + ": " + e.what());
  }
  return st;
}

}  // namespace loom
