#pragma once
// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011). A stream is a 64-bit key; the
// n-th number of a stream depends only on (key, n), so a dropout mask can be regenerated exactly in the
// backward pass or in recompute, on any thread, in any order. Keys are derived from
// (seed, rank, layer, micro-batch, purpose) with stream_key().
#include <cstdint>

namespace loom {

struct Philox4x32 {
  static inline void round(uint32_t c[4], const uint32_t k[2]) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    const uint32_t n0 = hi1 ^ c[1] ^ k[0];
    const uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
  }
  // Four 32-bit outputs for counter `ctr` under `key`.
  static inline void generate(uint64_t key, uint64_t ctr, uint32_t out[4]) {
    uint32_t c[4] = {uint32_t(ctr), uint32_t(ctr >> 32), 0u, 0u};
    uint32_t k[2] = {uint32_t(key), uint32_t(key >> 32)};
    for (int i = 0; i < 10; i++) {
      round(c, k);
      k[0] += 0x9E3779B9u;
      k[1] += 0xBB67AE85u;
    }
    out[0] = c[0]; out[1] = c[1]; out[2] = c[2]; out[3] = c[3];
  }
};

// splitmix64: mixes structured ids into a well-spread stream key.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline uint64_t stream_key(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0) {
  return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c) ^ d;
}

// Uniform in [0, 1) with 24 random bits, from one 32-bit output.
inline float u32_to_unit(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }

// Sequential generator over a stream for initialisation and sampling.
class Rng {
 public:
  explicit Rng(uint64_t key) : key_(key) {}
  uint32_t next_u32() {
    if (idx_ == 4) {
      Philox4x32::generate(key_, ctr_++, buf_);
      idx_ = 0;
    }
    return buf_[idx_++];
  }
  float uniform() { return u32_to_unit(next_u32()); }
  // Standard normal by Box-Muller on two uniforms in (0, 1].
  float normal();

 private:
  uint64_t key_;
  uint64_t ctr_ = 0;
  uint32_t buf_[4] = {};
  int idx_ = 4;
  bool has_spare_ = false;
  float spare_ = 0;
};

}  // namespace loom

namespace loom {
// Fill dst[0..n) with normal(0, std) values number first..first+n of stream `key`. Element i depends
// only on (key, i), so a tensor-parallel rank can generate exactly its slice of a full tensor.
void fill_normal(float* dst, int64_t first, int64_t n, uint64_t key, float std);
// Fill dst[0..n) with values lo + (hi - lo) u, u uniform in [0, 1) (32 random bits), number first..first+n of
// stream `key`: like fill_normal, element i depends only on (key, i).
void fill_uniform(float* dst, int64_t first, int64_t n, uint64_t key, float lo, float hi);
}  // namespace loom
