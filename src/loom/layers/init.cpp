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
  const uint64_t key = param_stream(seed, p.canonical_name());
  const auto& g = p.global_shape();
  float* dst = p.value.f32();
  if (p.split.dim <= 0) {
    // Whole tensor, or rows [offset, offset + local rows): one contiguous range of the full tensor.
    const int64_t row = p.shape.size() > 1 ? p.numel() / p.shape[0] : 1;
    fill_normal(dst, p.split.dim == 0 ? p.split.offset * row : 0, p.numel(), key, std);
    return;
  }
  // Columns [offset, offset + local cols) of a 2-D [out, in] tensor: one range per row.
  const int64_t rows = p.shape[0], cols = p.shape[1], full_cols = g[1];
  for (int64_t r = 0; r < rows; r++) fill_normal(dst + r * cols, r * full_cols + p.split.offset, cols, key, std);
}

void init_constant(Param& p, float value) { std::fill_n(p.value.f32(), p.numel(), value); }

}  // namespace loom
