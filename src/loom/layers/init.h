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
// torch.nn.init.xavier_uniform_ (gain 1) over the full [fan_out, fan_in] tensor, as Megatron's CPU
// initialisation applies it to the master weight before splitting: U(-a, a), a = sqrt(6 / (fan_in +
// fan_out)). fan_out: Megatron's row count when its tensor fuses several of Loom's (SwiGLU's
// [gate; up] fc1 is 2 x ffn rows); 0: the parameter's own.
void init_xavier_uniform(Param& p, uint64_t seed, int64_t fan_out = 0);
// A weight under Megatron's init_method / output_layer_init_method: normal(0, std), or xavier_uniform_
// with --init-method-xavier-uniform (which sets both).
void init_weight(Param& p, uint64_t seed, float std, bool xavier, int64_t fan_out = 0);
void init_constant(Param& p, float value);

}  // namespace loom
