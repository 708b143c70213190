#include "loom/core/rng.h"

#include <cmath>

namespace loom {

float Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = (double(next_u32()) + 1.0) / 4294967296.0;  // (0, 1]
  double u2 = double(next_u32()) / 4294967296.0;
  double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = float(r * std::sin(2.0 * M_PI * u2));
  has_spare_ = true;
  return float(r * std::cos(2.0 * M_PI * u2));
}

}  // namespace loom

namespace loom {

void fill_normal(float* dst, int64_t first, int64_t n, uint64_t key, float std) {
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n; j++) {
    int64_t i = first + j;
    uint32_t r[4];
    Philox4x32::generate(key, uint64_t(i >> 1), r);
    // Box-Muller on two 32-bit uniforms; the pair (cos, sin) serves elements 2k and 2k+1.
    double u1 = (double(r[0]) + 1.0) / 4294967296.0;
    double u2 = double(r[1]) / 4294967296.0;
    double rad = std::sqrt(-2.0 * std::log(u1));
    double z = (i & 1) ? rad * std::sin(2.0 * M_PI * u2) : rad * std::cos(2.0 * M_PI * u2);
    dst[j] = float(z * std);
  }
}

void fill_uniform(float* dst, int64_t first, int64_t n, uint64_t key, float lo, float hi) {
  const double a = double(lo), w = double(hi) - double(lo);
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n; j++) {
    const int64_t i = first + j;
    uint32_t r[4];
    Philox4x32::generate(key, uint64_t(i >> 2), r);  // four elements per counter
    const double u = double(r[i & 3]) / 4294967296.0;
    dst[j] = float(a + w * u);
  }
}

}  // namespace loom
