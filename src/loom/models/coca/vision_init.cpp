#include "loom/models/coca/vision_init.h"

#include <algorithm>
#include <cmath>

#include "loom/core/rng.h"
#include "loom/layers/init.h"

namespace loom::coca_init {

void trunc_normal(Param& p, uint64_t seed, float std) {
  // Loom's (threaded, counter-based) normal draw, then each value outside [-2, 2] redrawn from a stream of
  // its own element: the same distribution as rejection sampling, independent of the thread count.
  init_normal(p, seed, std);
  const uint64_t key = param_stream(seed, p.canonical_name());
  float* v = p.value.f32();
  for (int64_t i = 0; i < p.numel(); i++) {
    if (v[i] >= -2.0f && v[i] <= 2.0f) continue;
    Rng rng(stream_key(key, 0x7EC7, uint64_t(i)));
    float x;
    do x = rng.normal() * std; while (x < -2.0f || x > 2.0f);
    v[i] = x;
  }
}

void uniform(Param& p, uint64_t seed, float bound) {
  Rng rng(param_stream(seed, p.canonical_name()));
  float* v = p.value.f32();
  for (int64_t i = 0; i < p.numel(); i++) v[i] = (2.0f * rng.uniform() - 1.0f) * bound;
}

void normal(Param& p, uint64_t seed, float std) { init_normal(p, seed, std); }

void constant(Param& p, float value) { std::fill_n(p.value.f32(), p.numel(), value); }

}  // namespace loom::coca_init
