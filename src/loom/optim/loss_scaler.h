#pragma once
// Loss scaling for fp16 training, Megatron's grad scalers (megatron/core/optimizer/grad_scaler.py):
//  - ConstantGradScaler(scale): --loss-scale S; never changes.
//  - DynamicGradScaler(initial, min, growth 2.0, backoff 0.5, growth_interval = --loss-scale-window,
//    hysteresis = --hysteresis). update(found_inf):
//      inf/nan: growth tracker = 0, hysteresis tracker -= 1; if it is now <= 0 the scale becomes
//               max(scale x backoff, min). The hysteresis tracker is NOT reset here (it keeps going
//               negative, so every further overflow backs off at once).
//      clean:   growth tracker += 1; when it equals growth_interval: growth tracker = 0, hysteresis
//               tracker = hysteresis, scale x= growth (no upper bound, as in Megatron). A clean step
//               alone does not restore the hysteresis tracker.
//   The scale is a float32 value, as Megatron's CUDA tensor; inv_scale() = float(1 / double(scale)).
//
// Megatron's choice of scaler (get_megatron_optimizer): fp16 or bf16 with --loss-scale: constant;
// fp16 without it: dynamic; otherwise none (bf16/fp32 log `loss scale: 1.0`). make_grad_scaler does this.
#include <cstdint>
#include <memory>
#include <optional>

namespace loom {

// What a checkpoint stores (Megatron's state_dict: scale, growth_tracker, hysteresis_tracker).
struct GradScalerState {
  float scale = 1.0f;
  int64_t growth_tracker = 0;
  int64_t hysteresis_tracker = 0;
};

class GradScaler {
 public:
  explicit GradScaler(double initial_scale);
  virtual ~GradScaler() = default;
  float scale() const { return scale_; }
  float inv_scale() const { return float(1.0 / double(scale_)); }
  // Called once per iteration after the (model-parallel reduced) overflow check, before deciding to skip.
  virtual void update(bool found_inf) = 0;
  virtual GradScalerState state() const = 0;
  virtual void load_state(const GradScalerState& s) = 0;
  virtual bool dynamic() const = 0;

 protected:
  float scale_;
};

class ConstantGradScaler final : public GradScaler {
 public:
  explicit ConstantGradScaler(double scale) : GradScaler(scale) {}
  void update(bool) override {}
  GradScalerState state() const override { return {scale_, 0, 0}; }
  // Megatron's ConstantGradScaler.load_state_dict ignores the checkpoint: the flag's value stays.
  void load_state(const GradScalerState&) override {}
  bool dynamic() const override { return false; }
};

class DynamicGradScaler final : public GradScaler {
 public:
  // Throws UserError on Megatron's asserted ranges: 0 < min <= initial, growth > 1, 0 < backoff < 1,
  // growth_interval > 0, hysteresis > 0.
  DynamicGradScaler(double initial_scale, double min_scale, double growth_factor, double backoff_factor,
                    int64_t growth_interval, int64_t hysteresis);
  void update(bool found_inf) override;
  GradScalerState state() const override { return {scale_, growth_tracker_, hysteresis_tracker_}; }
  void load_state(const GradScalerState& s) override;
  bool dynamic() const override { return true; }

  void set_scale(float s) { scale_ = s; }
  void set_growth_tracker(int64_t t) { growth_tracker_ = t; }
  void set_hysteresis_tracker(int64_t t) { hysteresis_tracker_ = t; }
  int64_t growth_tracker() const { return growth_tracker_; }
  int64_t hysteresis_tracker() const { return hysteresis_tracker_; }
  float min_scale() const { return min_scale_; }
  int64_t growth_interval() const { return growth_interval_; }
  int64_t hysteresis() const { return hysteresis_; }

 private:
  float min_scale_, growth_factor_, backoff_factor_;
  int64_t growth_interval_, hysteresis_;
  int64_t growth_tracker_ = 0, hysteresis_tracker_;
};

struct GradScalerOptions {
  bool fp16 = false, bf16 = false;
  std::optional<double> loss_scale;        // --loss-scale (constant)
  double initial_loss_scale = 4294967296.0;  // --initial-loss-scale (2^32)
  double min_loss_scale = 1.0;             // --min-loss-scale
  int64_t loss_scale_window = 1000;        // --loss-scale-window
  int64_t hysteresis = 2;                  // --hysteresis
};
// Megatron's selection; null when no scaler is used (fp32, or bf16 without --loss-scale).
std::unique_ptr<GradScaler> make_grad_scaler(const GradScalerOptions& o);

// Whether any of x[0..n) is +-inf or NaN (exponent bits all ones). Vectorised and threaded.
bool has_inf_or_nan(const float* x, long n);
// torch._amp_foreach_non_finite_check_and_unscale_ on one buffer: returns whether x held inf/NaN
// (checked on the scaled values) and multiplies x by inv_scale (skipped when inv_scale == 1).
bool unscale_and_check(float* x, long n, float inv_scale);

}  // namespace loom
