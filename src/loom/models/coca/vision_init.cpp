#include "loom/models/coca/vision_init.h"

#include <algorithm>
#include <cmath>

#include "loom/core/rng.h"
#include "loom/layers/init.h"

namespace loom::coca_init {

void trunc_normal(Param& p, uint64_t seed, float std) {
  Rng rng(param_stream(seed, p.canonical_name()));
  float* v = p.value.f32();
  for (int64_t i = 0; i < p.numel(); i++) {
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
