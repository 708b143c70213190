#pragma once
// Megatron's initialisation, made layout-independent: every parameter draws from its own counter-based
// stream keyed by (seed, name), element by element, so a tensor-parallel shard can draw exactly its part
// of the full tensor and any parallel layout starts from the same model as one process.
#include <cstdint>
#include <string>

#include "loom/layers/param_store.h"

namespace loom {

uint64_t param_stream(uint64_t seed, const std::string& name);
void init_normal(Param& p, uint64_t seed, float std);  // normal(0, std)
void init_constant(Param& p, float value);

}  // namespace loom
