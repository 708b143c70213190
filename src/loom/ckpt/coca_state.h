#pragma once
// A CoCa checkpoint's state.json (see coca_checkpoint.h): parsed and checked (format, model shape, each
// file's size and CRC-32, the training counters) before any tensor is read, so a bad or hand-edited file
// is one UserError naming it. Kept apart from the model so that fuzz/fuzz_coca_state.cpp can drive it.
#include <string>

#include <nlohmann/json.hpp>

#include "loom/ckpt/coca_checkpoint.h"

namespace loom {

constexpr int kCocaCheckpointFormatVersion = 1;

// `dir`: the tag directory holding state.json; `want_shape`: the shape fields this run's model has (every
// one must be in the file with the same value). Throws UserError naming the file.
CocaTrainState read_coca_state(const std::string& dir, const nlohmann::json& want_shape);

}  // namespace loom
