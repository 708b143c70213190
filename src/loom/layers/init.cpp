#include "loom/layers/init.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "loom/core/rng.h"

namespace loom {

uint64_t param_stream(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return stream_key(seed, 0x1A17, h);
}

namespace {

// fill(dst, first, count) over this rank's part of p's full tensor: one range of it for whole tensors and
// row splits, one range per row for column splits.
template <class Fill>
void fill_layout(Param& p, Fill&& fill) {
  const auto& g = p.global_shape();
  float* dst = p.value.f32();
  if (p.split.dim <= 0) {
    // Whole tensor, or rows [offset, offset + local rows): one contiguous range of the full tensor.
    const int64_t row = p.shape.size() > 1 ? p.numel() / p.shape[0] : 1;
    fill(dst, p.split.dim == 0 ? p.split.offset * row : 0, p.numel());
    return;
  }
  // Columns [offset, offset + local cols) of a 2-D [out, in] tensor: one range per row.
  const int64_t rows = p.shape[0], cols = p.shape[1], full_cols = g[1];
  for (int64_t r = 0; r < rows; r++) fill(dst + r * cols, r * full_cols + p.split.offset, cols);
}

}  // namespace

void init_normal(Param& p, uint64_t seed, float std) {
  const uint64_t key = param_stream(seed, p.canonical_name());
  fill_layout(p, [&](float* dst, int64_t first, int64_t n) { fill_normal(dst, first, n, key, std); });
}

void init_xavier_uniform(Param& p, uint64_t seed, int64_t fan_out) {
  const auto& g = p.global_shape();
  if (g.size() != 2) throw std::logic_error("init_xavier_uniform: " + p.name + " is not a 2-D weight");
  const double fan_in = double(g[1]), out = double(fan_out > 0 ? fan_out : g[0]);
  const float bound = float(std::sqrt(6.0 / (fan_in + out)));
  const uint64_t key = param_stream(seed, p.canonical_name());
  fill_layout(p, [&](float* dst, int64_t first, int64_t n) { fill_uniform(dst, first, n, key, -bound, bound); });
}

void init_weight(Param& p, uint64_t seed, float std, bool xavier, int64_t fan_out) {
  if (xavier) init_xavier_uniform(p, seed, fan_out);
  else init_normal(p, seed, std);
}

void init_constant(Param& p, float value) { std::fill_n(p.value.f32(), p.numel(), value); }

}  // namespace loom
