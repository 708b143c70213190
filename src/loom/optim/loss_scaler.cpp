#include "loom/optim/loss_scaler.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "loom/core/error.h"
#include "loom/kernels/cpu/adamw.h"
#include "loom/kernels/cpu/parallel.h"

namespace loom {

GradScaler::GradScaler(double initial_scale) : scale_(float(initial_scale)) {
  require(initial_scale > 0.0, "the loss scale must be positive");
}

DynamicGradScaler::DynamicGradScaler(double initial_scale, double min_scale, double growth_factor,
                                     double backoff_factor, int64_t growth_interval, int64_t hysteresis)
    : GradScaler(initial_scale),
      min_scale_(float(min_scale)),
      growth_factor_(float(growth_factor)),
      backoff_factor_(float(backoff_factor)),
      growth_interval_(growth_interval),
      hysteresis_(hysteresis),
      hysteresis_tracker_(hysteresis) {
  require(min_scale > 0.0, "--min-loss-scale must be positive");
  require(min_scale <= initial_scale, "--min-loss-scale must not exceed --initial-loss-scale");
  require(growth_factor > 1.0, "the loss-scale growth factor must be greater than 1");
  require(backoff_factor > 0.0 && backoff_factor < 1.0, "the loss-scale backoff factor must be within (0, 1)");
  require(growth_interval > 0, "--loss-scale-window must be positive");
  require(hysteresis > 0, "--hysteresis must be positive");
}

void DynamicGradScaler::update(bool found_inf) {
  if (found_inf) {
    growth_tracker_ = 0;
    hysteresis_tracker_ -= 1;
    if (hysteresis_tracker_ <= 0) scale_ = std::max(scale_ * backoff_factor_, min_scale_);
  } else {
    growth_tracker_ += 1;
    if (growth_tracker_ == growth_interval_) {
      growth_tracker_ = 0;
      hysteresis_tracker_ = hysteresis_;
      scale_ = scale_ * growth_factor_;
    }
  }
}

void DynamicGradScaler::load_state(const GradScalerState& s) {
  scale_ = s.scale;
  growth_tracker_ = s.growth_tracker;
  hysteresis_tracker_ = s.hysteresis_tracker;
}

std::unique_ptr<GradScaler> make_grad_scaler(const GradScalerOptions& o) {
  require(!(o.fp16 && o.bf16), "give only one of --fp16 and --bf16");
  if (!o.fp16 && !o.bf16) return nullptr;
  if (o.loss_scale && *o.loss_scale != 0.0) return std::make_unique<ConstantGradScaler>(*o.loss_scale);
  if (o.fp16)
    return std::make_unique<DynamicGradScaler>(o.initial_loss_scale, o.min_loss_scale, 2.0, 0.5, o.loss_scale_window,
                                               o.hysteresis);
  return nullptr;
}

namespace {

constexpr long kBlock = 65536;  // floats per task

// Any element of x[i0, i1) with all exponent bits set (inf or NaN)?
bool block_has_inf_or_nan(const float* x, long i0, long i1) {
  const __m256i exp_mask = _mm256_set1_epi32(0x7f800000);
  __m256i acc = _mm256_setzero_si256();
  long i = i0;
  for (; i + 32 <= i1; i += 32) {
    const __m256i a = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), exp_mask);
    const __m256i b = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8)), exp_mask);
    const __m256i c = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16)), exp_mask);
    const __m256i d = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 24)), exp_mask);
    acc = _mm256_or_si256(acc, _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi32(a, exp_mask),
                                                                _mm256_cmpeq_epi32(b, exp_mask)),
                                               _mm256_or_si256(_mm256_cmpeq_epi32(c, exp_mask),
                                                               _mm256_cmpeq_epi32(d, exp_mask))));
  }
  if (!_mm256_testz_si256(acc, acc)) return true;
  for (; i < i1; i++) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) return true;
  }
  return false;
}

}  // namespace

bool has_inf_or_nan(const float* x, long n) {
  if (n <= 0) return false;
  const long blocks = (n + kBlock - 1) / kBlock;
  if (blocks == 1 || !cpu::detail::worth_parallel(n)) return block_has_inf_or_nan(x, 0, n);
  std::atomic<bool> found{false};
#pragma omp parallel for schedule(static)
  for (long blk = 0; blk < blocks; blk++) {
    if (found.load(std::memory_order_relaxed)) continue;  // one overflow is enough: skip the rest
    if (block_has_inf_or_nan(x, blk * kBlock, std::min(n, (blk + 1) * kBlock)))
      found.store(true, std::memory_order_relaxed);
  }
  return found.load();
}

bool unscale_and_check(float* x, long n, float inv_scale) {
  const bool found = has_inf_or_nan(x, n);
  if (inv_scale != 1.0f) cpu::scale_inplace(x, n, inv_scale);
  return found;
}

}  // namespace loom
