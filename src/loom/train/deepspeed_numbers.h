#pragma once
// Range checks for the numbers of a DeepSpeed JSON that Loom reads as integers. nlohmann's get<int>() and
// get<int64_t>() cast: a float value outside the type's range (1e30, or 5e19 for reduce_bucket_size) is
// undefined behaviour, an integer outside it silently wraps (2^32 micro-batches would become 0). Run on
// the parsed file before apply_deepspeed_config maps it onto the flags.
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace loom {

// UserError "<path>: <key> ... is out of range" for the first such value.
void check_deepspeed_numbers(const nlohmann::json& config, const std::string& path);

}  // namespace loom
