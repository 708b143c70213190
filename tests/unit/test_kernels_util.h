#pragma once
// Shared helpers for the CPU kernel tests (test_kernels_*.cpp): random data, tolerance checks and a
// scoped OpenMP thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/rng.h"

namespace loom::test {

// Bit patterns of fp32 values, and the scalar reference conversions to and from the 16-bit float types.
inline uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline float bits_f32(uint32_t u) { return std::bit_cast<float>(u); }
inline uint16_t half_bits(float x, DType t) { return t == DType::F16 ? f32_to_f16(x) : f32_to_bf16(x); }
inline float half_value(uint16_t h, DType t) { return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h); }

inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Every |got[i] - want[i]| <= rtol * (|want[i]| + max_j |want[j]|) + atol: relative to the element and to the
// tensor's scale (so elements near zero are judged against the magnitude of the whole tensor).
template <class G, class W>
inline ::testing::AssertionResult all_close(const G& got, const W& want, double rtol, double atol = 0.0) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  double scale = 0.0;
  for (size_t i = 0; i < want.size(); i++) scale = std::max(scale, std::fabs(double(want[i])));
  double worst = 0.0;
  size_t wi = 0;
  for (size_t i = 0; i < want.size(); i++) {
    const double err = std::fabs(double(got[i]) - double(want[i]));
    const double ratio = err / (rtol * (std::fabs(double(want[i])) + scale) + atol + 1e-300);
    if (!(ratio <= worst)) {
      worst = ratio;
      wi = i;
    }
  }
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << wi << ": got " << double(got[wi]) << ", want "
                                       << double(want[wi]) << " (tensor scale " << scale << ", error "
                                       << worst << " x tolerance)";
}

inline ::testing::AssertionResult bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "size " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); i++) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  }
  return ::testing::AssertionSuccess();
}

// Sets the OpenMP thread count for a scope.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedThreads() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace loom::test
