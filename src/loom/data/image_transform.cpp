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

// One output line of a pass in "vertical" form: out[i] = clip8(sum_t k[t] * line(first + t)[i]) over
// n contiguous bytes. Lines are contiguous, so the compiler vectorises the inner loop; both passes are
// brought into this form (the horizontal one on a transposed copy), with Pillow's integer arithmetic
// unchanged, so the result stays bit-exact.
void weighted_lines(const uint8_t* base, size_t stride, int first, int taps, const int32_t* k, size_t n,
                    int32_t* acc, uint8_t* out) {
  // Blocks of 32 sums stay in registers across the taps (one store per block, not one per tap).
  constexpr size_t kBlock = 32;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    int32_t a[kBlock];
    for (size_t j = 0; j < kBlock; j++) a[j] = 1 << (kPrecisionBits - 1);
    for (int t = 0; t < taps; t++) {
      const uint8_t* in = base + size_t(first + t) * stride + i;
      const int32_t kt = k[t];
      for (size_t j = 0; j < kBlock; j++) a[j] += int32_t(in[j]) * kt;
    }
    for (size_t j = 0; j < kBlock; j++) out[i + j] = clip8(a[j]);
  }
  for (size_t j = i; j < n; j++) acc[j] = 1 << (kPrecisionBits - 1);
  for (int t = 0; t < taps; t++) {
    const uint8_t* in = base + size_t(first + t) * stride;
    const int32_t kt = k[t];
    for (size_t j = i; j < n; j++) acc[j] += int32_t(in[j]) * kt;
  }
  for (size_t j = i; j < n; j++) out[j] = clip8(acc[j]);
}

// dst[c][r][0..3) = src[r][c][0..3) for an rows x cols block of 3-byte pixels.
// Not auto-vectorised: GCC turns the strided reads into long insert/spill sequences (measured slower).
#if defined(__GNUC__) && !defined(__clang__)
#define LOOM_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#else
#define LOOM_NO_VECTORIZE
#endif
LOOM_NO_VECTORIZE void transpose_pixels(const uint8_t* src, size_t src_stride, int rows, int cols, uint8_t* dst, size_t dst_stride) {
  constexpr int kTile = 32;  // keeps both sides of a tile in L1
  for (int r0 = 0; r0 < rows; r0 += kTile)
    for (int c0 = 0; c0 < cols; c0 += kTile) {
      const int r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int c = c0; c < c1; c++) {  // contiguous writes, reads from kTile cached rows
        const uint8_t* __restrict in = src + size_t(r0) * src_stride + size_t(c) * 3;
        uint8_t* __restrict o = dst + size_t(c) * dst_stride + size_t(r0) * 3;
        for (int r = 0; r < r1 - r0; r++) {
          o[3 * r] = in[size_t(r) * src_stride];
          o[3 * r + 1] = in[size_t(r) * src_stride + 1];
          o[3 * r + 2] = in[size_t(r) * src_stride + 2];
        }
      }
    }
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
  const uint8_t* mid;  // line y of the horizontal pass's result is mid + (y - mid_first) * mid_stride
  size_t mid_stride;
  int mid_first = 0;
  if (need_h) {
    // Pillow's horizontal pass over rows [row_first, row_last): on a transposed copy of the columns it
    // reads, each output column is a weighted sum of whole input columns; transposed back afterwards.
    const int ksize_h = precompute(box.width, out_w, win_left, win_w, s.bounds_x, s.coeffs_x, tmp);
    const int nrows = row_last - row_first;
    const int col_first = s.bounds_x[0];
    const int col_last = s.bounds_x[size_t(win_w - 1) * 2] + s.bounds_x[size_t(win_w - 1) * 2 + 1];
    const size_t line = size_t(nrows) * 3;
    s.transposed.resize(line * size_t(col_last - col_first));
    transpose_pixels(crop + size_t(row_first) * src_stride + size_t(col_first) * 3, src_stride, nrows,
                     col_last - col_first, s.transposed.data(), line);
    s.columns.resize(line * size_t(win_w));
    s.acc.resize(std::max(line, size_t(win_w) * 3));
    for (int xx = 0; xx < win_w; xx++)
      weighted_lines(s.transposed.data(), line, s.bounds_x[size_t(xx) * 2] - col_first, s.bounds_x[size_t(xx) * 2 + 1],
                     &s.coeffs_x[size_t(xx) * ksize_h], line, s.acc.data(), &s.columns[size_t(xx) * line]);
    mid_stride = size_t(win_w) * 3;
    s.rows.resize(mid_stride * nrows);
    transpose_pixels(s.columns.data(), line, win_w, nrows, s.rows.data(), mid_stride);
    mid = s.rows.data();
    mid_first = row_first;
  } else {
    mid = crop + size_t(win_left) * 3;
    mid_stride = src_stride;
  }
  const size_t n = size_t(win_w) * 3;
  if (!need_v) {
    for (int yy = 0; yy < win_h; yy++)
      std::copy_n(mid + size_t(win_top + yy - mid_first) * mid_stride, n, &dst.rgb[size_t(yy) * n]);
    return;
  }
  s.acc.resize(std::max(s.acc.size(), n));
  for (int yy = 0; yy < win_h; yy++)
    weighted_lines(mid, mid_stride, s.bounds_y[size_t(yy) * 2] - mid_first, s.bounds_y[size_t(yy) * 2 + 1],
                   &s.coeffs_y[size_t(yy) * ksize_v], n, s.acc.data(), &dst.rgb[size_t(yy) * n]);
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
  require(img.width > 0 && img.height > 0, "image transform: empty image");
  const CropBox box = random_resized_crop_params(img.width, img.height, cfg_, seed, epoch, index);
  resize_bicubic(img, box, cfg_.size, cfg_.size, out, scratch);
}

void ImageTransform::eval_uint8(const Image& img, Image& out, ResampleScratch& scratch) const {
  require(img.width > 0 && img.height > 0, "image transform: empty image");
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
