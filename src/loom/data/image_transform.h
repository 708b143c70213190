#pragma once
// EVA-CLIP's image transforms (open_clip's image_transform) on decoded RGB images, computed as
// torchvision does them on PIL images so a model trained here sees the same pixels:
//   train: RandomResizedCrop(size, scale=(0.9, 1), ratio=(3/4, 4/3), BICUBIC) -> ToTensor -> Normalize
//   eval:  Resize(size, BICUBIC) of the shorter side -> CenterCrop(size) -> ToTensor -> Normalize
// The resampling is Pillow's (libImaging/Resample.c) bit for bit on uint8: separable, horizontal pass
// first, the bicubic kernel (a = -0.5) widened by the downscale factor (antialiasing), coefficients
// normalised and rounded to 22-bit fixed point, each pass rounded and clipped to uint8. The crop's
// random parameters follow torchvision's get_params but come from Loom's counter-based RNG keyed by
// (seed, epoch, sample index), so any sample's crop can be recomputed on any thread after a resume.
#include <cstdint>
#include <vector>

#include "loom/data/image_codec.h"

namespace loom::data {

struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

struct ImageTransformConfig {
  int size = 224;                        // output is size x size
  double scale_min = 0.9, scale_max = 1.0;  // fraction of the image's area (EVA-CLIP's scale)
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};  // OpenAI CLIP
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
};

// torchvision's RandomResizedCrop.get_params for a width x height image: 10 tries of a uniform area
// fraction and a log-uniform aspect ratio (sides rounded half to even, as Python's round), a uniform
// position for the first that fits, else the whole image centre-cropped to the nearest allowed ratio.
// Draws come from stream (seed, epoch, index) only.
CropBox random_resized_crop_params(int width, int height, const ImageTransformConfig& cfg, uint64_t seed,
                                   uint64_t epoch, uint64_t index);

// torchvision's Resize(size) output for a width x height image: the shorter side becomes `size`, the
// longer int(size * long / short). Returns {out_width, out_height}.
std::pair<int, int> shorter_side_resize(int width, int height, int size);
// torchvision's center_crop offsets: int(round((in - out) / 2)) with Python's half-to-even round.
int center_crop_offset(int in, int out);

// Reusable buffers so that a worker thread transforming image after image does not allocate.
struct ResampleScratch {
  std::vector<int32_t> coeffs_x, coeffs_y;
  std::vector<int> bounds_x, bounds_y;
  std::vector<uint8_t> rows, transposed, columns;
  std::vector<double> weights;
  std::vector<int32_t> acc;
};

// PIL's img.crop(box).resize((out_w, out_h), BICUBIC), but only the output window starting at
// (win_left, win_top) of size win_w x win_h is produced into `dst` (each output pixel depends only on
// its own coefficients, so a window equals the same pixels of the full resize: eval's resize + centre
// crop in one pass). `box` must lie inside `src`.
void resize_bicubic_window(const Image& src, const CropBox& box, int out_w, int out_h, int win_left, int win_top,
                           int win_w, int win_h, Image& dst, ResampleScratch& scratch);
inline void resize_bicubic(const Image& src, const CropBox& box, int out_w, int out_h, Image& dst,
                           ResampleScratch& scratch) {
  resize_bicubic_window(src, box, out_w, out_h, 0, 0, out_w, out_h, dst, scratch);
}

// ToTensor + Normalize: float CHW (3 x h x w) of (v / 255 - mean) / std, in float32 as torchvision.
void normalize_to_chw(const Image& img, const ImageTransformConfig& cfg, float* out);

// The whole transforms; `out` holds 3 * size * size floats. `work` is a scratch image.
class ImageTransform {
 public:
  explicit ImageTransform(ImageTransformConfig cfg);
  const ImageTransformConfig& config() const { return cfg_; }
  // The uint8 stages, for tests and for callers that normalise elsewhere.
  void train_uint8(const Image& img, uint64_t seed, uint64_t epoch, uint64_t index, Image& out,
                   ResampleScratch& scratch) const;
  void eval_uint8(const Image& img, Image& out, ResampleScratch& scratch) const;
  void train(const Image& img, uint64_t seed, uint64_t epoch, uint64_t index, float* out, Image& work,
             ResampleScratch& scratch) const;
  void eval(const Image& img, float* out, Image& work, ResampleScratch& scratch) const;

 private:
  ImageTransformConfig cfg_;
};

}  // namespace loom::data
