#include "loom/layers/init.h"

#include <algorithm>

#include "loom/core/rng.h"

namespace loom {

uint64_t param_stream(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return stream_key(seed, 0x1A17, h);
}

void init_normal(Param& p, uint64_t seed, float std) {
  fill_normal(p.value.f32(), 0, p.numel(), param_stream(seed, p.name), std);
}

void init_constant(Param& p, float value) { std::fill_n(p.value.f32(), p.numel(), value); }

}  // namespace loom
