#include "loom/data/image_transform.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "loom/core/error.h"
#include "loom/core/rng.h"

namespace loom::data {
namespace {

// Pillow's fixed point: 32 bits minus 8 for the value and 2 for the kernel's overshoot.
constexpr int kPrecisionBits = 32 - 8 - 2;

// Python's round() on a double: half to even (the default FE_TONEAREST mode).
int py_round(double x) { return static_cast<int>(std::nearbyint(x)); }

// Pillow's bicubic_filter with a = -0.5, operation for operation.
double bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for output positions [first, first + count) of an
// in_size -> out_size resize of the whole input (box 0..in_size, as after img.crop). Returns ksize;
// bounds holds (xmin, n) per position, coeffs ksize int32 per position.
int precompute(int in_size, int out_size, int first, int count, std::vector<int>& bounds,
               std::vector<int32_t>& coeffs, std::vector<double>& tmp) {
  const double in0 = 0.0, in1 = static_cast<double>(static_cast<float>(in_size));
  double scale = (in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;  // BICUBIC.support = 2
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  bounds.resize(size_t(count) * 2);
  coeffs.assign(size_t(count) * ksize, 0);
  tmp.resize(size_t(ksize));
  for (int i = 0; i < count; i++) {
    const int xx = first + i;
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      const double w = bicubic((x + xmin - center + 0.5) * ss);
      tmp[size_t(x)] = w;
      ww += w;
    }
    int32_t* k = &coeffs[size_t(i) * ksize];
    for (int x = 0; x < xmax; x++) {
      double v = tmp[size_t(x)];
      if (ww != 0.0) v /= ww;
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    bounds[size_t(i) * 2] = xmin;
    bounds[size_t(i) * 2 + 1] = xmax;
  }
  return ksize;
}

inline uint8_t clip8(int32_t ss) {
  const int32_t v = ss >> kPrecisionBits;  // arithmetic shift, as Pillow's table lookup
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

CropBox random_resized_crop_params(int width, int height, const ImageTransformConfig& cfg, uint64_t seed,
                                   uint64_t epoch, uint64_t index) {
  // 0x52524331 = "RRC1": keeps this stream apart from every other consumer of (seed, ...).
  Rng rng(stream_key(seed, 0x52524331u, epoch, index));
  auto uniform = [&rng](double lo, double hi) {  // 53-bit uniform in [lo, hi)
    const uint64_t bits = (uint64_t(rng.next_u32()) << 21) ^ (rng.next_u32() >> 11);
    return lo + (hi - lo) * (double(bits) * (1.0 / 9007199254740992.0));
  };
  auto randint = [&rng](int n) {  // uniform in [0, n)
    return static_cast<int>((uint64_t(rng.next_u32()) * uint64_t(n)) >> 32);
  };
  const double area = double(height) * width;
  const double log_lo = std::log(cfg.ratio_min), log_hi = std::log(cfg.ratio_max);
  for (int attempt = 0; attempt < 10; attempt++) {
    const double target_area = area * uniform(cfg.scale_min, cfg.scale_max);
    const double aspect = std::exp(uniform(log_lo, log_hi));
    const int w = py_round(std::sqrt(target_area * aspect));
    const int h = py_round(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int i = randint(height - h + 1);
      const int j = randint(width - w + 1);
      return {i, j, h, w};
    }
  }
  const double in_ratio = double(width) / double(height);
  int w, h;
  if (in_ratio < std::min(cfg.ratio_min, cfg.ratio_max)) {
    w = width;
    h = py_round(w / std::min(cfg.ratio_min, cfg.ratio_max));
  } else if (in_ratio > std::max(cfg.ratio_min, cfg.ratio_max)) {
    h = height;
    w = py_round(h * std::max(cfg.ratio_min, cfg.ratio_max));
  } else {
    w = width;
    h = height;
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

std::pair<int, int> shorter_side_resize(int width, int height, int size) {
  const bool w_short = width <= height;
  const int s = w_short ? width : height, l = w_short ? height : width;
  const int new_long = static_cast<int>(double(size) * l / s);  // Python: int(size * long / short)
  return w_short ? std::pair{size, new_long} : std::pair{new_long, size};
}

int center_crop_offset(int in, int out) { return py_round((in - out) / 2.0); }

void resize_bicubic_window(const Image& src, const CropBox& box, int out_w, int out_h, int win_left, int win_top,
                           int win_w, int win_h, Image& dst, ResampleScratch& s) {
  require(box.left >= 0 && box.top >= 0 && box.width > 0 && box.height > 0 && box.left + box.width <= src.width &&
              box.top + box.height <= src.height,
          "resize: crop box outside the image");
  require(win_left >= 0 && win_top >= 0 && win_w > 0 && win_h > 0 && win_left + win_w <= out_w &&
              win_top + win_h <= out_h,
          "resize: output window outside the output");
  dst.width = win_w;
  dst.height = win_h;
  dst.rgb.resize(size_t(win_w) * win_h * 3);
  const size_t src_stride = size_t(src.width) * 3;
  const uint8_t* crop = src.rgb.data() + size_t(box.top) * src_stride + size_t(box.left) * 3;
  // Pillow skips a pass whose size does not change (the image is then copied, not filtered).
  const bool need_h = out_w != box.width, need_v = out_h != box.height;
  std::vector<double>& tmp = s.weights;
  int ksize_v = 0;
  int row_first = win_top, row_last = win_top + win_h;  // input rows the vertical pass reads
  if (need_v) {
    ksize_v = precompute(box.height, out_h, win_top, win_h, s.bounds_y, s.coeffs_y, tmp);
    row_first = s.bounds_y[0];
    row_last = s.bounds_y[size_t(win_h - 1) * 2] + s.bounds_y[size_t(win_h - 1) * 2 + 1];
  }
  // Horizontal pass into rows [row_first, row_last) of the window's columns.
  const uint8_t* mid;
  size_t mid_stride;
  if (need_h) {
    const int ksize_h = precompute(box.width, out_w, win_left, win_w, s.bounds_x, s.coeffs_x, tmp);
    const int nrows = row_last - row_first;
    mid_stride = size_t(win_w) * 3;
    s.rows.resize(mid_stride * nrows);
    for (int r = 0; r < nrows; r++) {
      const uint8_t* in = crop + size_t(row_first + r) * src_stride;
      uint8_t* o = &s.rows[size_t(r) * mid_stride];
      for (int xx = 0; xx < win_w; xx++) {
        const int xmin = s.bounds_x[size_t(xx) * 2], n = s.bounds_x[size_t(xx) * 2 + 1];
        const int32_t* k = &s.coeffs_x[size_t(xx) * ksize_h];
        int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        const uint8_t* p = in + size_t(xmin) * 3;
        for (int x = 0; x < n; x++) {
          s0 += p[3 * x] * k[x];
          s1 += p[3 * x + 1] * k[x];
          s2 += p[3 * x + 2] * k[x];
        }
        o[3 * xx] = clip8(s0);
        o[3 * xx + 1] = clip8(s1);
        o[3 * xx + 2] = clip8(s2);
      }
    }
    mid = s.rows.data() - size_t(row_first) * mid_stride;  // indexed by input row
  } else {
    mid = crop + size_t(win_left) * 3;
    mid_stride = src_stride;
  }
  const size_t n = size_t(win_w) * 3;
  if (!need_v) {
    for (int yy = 0; yy < win_h; yy++)
      std::copy_n(mid + size_t(win_top + yy) * mid_stride, n, &dst.rgb[size_t(yy) * n]);
    return;
  }
  // Vertical pass: contiguous bytes of a row times one coefficient, which the compiler vectorises.
  std::vector<int32_t>& acc = s.acc;
  acc.resize(n);
  for (int yy = 0; yy < win_h; yy++) {
    const int ymin = s.bounds_y[size_t(yy) * 2], cnt = s.bounds_y[size_t(yy) * 2 + 1];
    const int32_t* k = &s.coeffs_y[size_t(yy) * ksize_v];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < cnt; y++) {
      const uint8_t* in = mid + size_t(ymin + y) * mid_stride;
      const int32_t ky = k[y];
      for (size_t i = 0; i < n; i++) acc[i] += int32_t(in[i]) * ky;
    }
    uint8_t* o = &dst.rgb[size_t(yy) * n];
    for (size_t i = 0; i < n; i++) o[i] = clip8(acc[i]);
  }
}

void normalize_to_chw(const Image& img, const ImageTransformConfig& cfg, float* out) {
  // torchvision: img.float().div(255) then sub_(mean).div_(std), all in float32; a table per channel
  // holds exactly those results.
  float lut[3][256];
  for (int c = 0; c < 3; c++)
    for (int v = 0; v < 256; v++) lut[c][v] = (float(v) / 255.0f - cfg.mean[c]) / cfg.std[c];
  const size_t plane = size_t(img.width) * img.height;
  const uint8_t* p = img.rgb.data();
  for (size_t i = 0; i < plane; i++) {
    out[i] = lut[0][p[3 * i]];
    out[plane + i] = lut[1][p[3 * i + 1]];
    out[2 * plane + i] = lut[2][p[3 * i + 2]];
  }
}

ImageTransform::ImageTransform(ImageTransformConfig cfg) : cfg_(cfg) {
  require(cfg_.size > 0, "image transform: size must be positive");
  require(cfg_.scale_min > 0 && cfg_.scale_min <= cfg_.scale_max, "image transform: bad scale range");
  require(cfg_.ratio_min > 0 && cfg_.ratio_min <= cfg_.ratio_max, "image transform: bad ratio range");
}

void ImageTransform::train_uint8(const Image& img, uint64_t seed, uint64_t epoch, uint64_t index, Image& out,
                                 ResampleScratch& scratch) const {
  const CropBox box = random_resized_crop_params(img.width, img.height, cfg_, seed, epoch, index);
  resize_bicubic(img, box, cfg_.size, cfg_.size, out, scratch);
}

void ImageTransform::eval_uint8(const Image& img, Image& out, ResampleScratch& scratch) const {
  const auto [rw, rh] = shorter_side_resize(img.width, img.height, cfg_.size);
  const CropBox whole{0, 0, img.height, img.width};
  resize_bicubic_window(img, whole, rw, rh, center_crop_offset(rw, cfg_.size), center_crop_offset(rh, cfg_.size),
                        cfg_.size, cfg_.size, out, scratch);
}

void ImageTransform::train(const Image& img, uint64_t seed, uint64_t epoch, uint64_t index, float* out, Image& work,
                           ResampleScratch& scratch) const {
  train_uint8(img, seed, epoch, index, work, scratch);
  normalize_to_chw(work, cfg_, out);
}

void ImageTransform::eval(const Image& img, float* out, Image& work, ResampleScratch& scratch) const {
  eval_uint8(img, work, scratch);
  normalize_to_chw(work, cfg_, out);
}

}  // namespace loom::data
