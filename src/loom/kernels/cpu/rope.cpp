#include "loom/kernels/cpu/rope.h"

#include <immintrin.h>

#include <cmath>

#include "loom/kernels/cpu/parallel.h"

namespace loom::cpu {

std::vector<float> rope_inv_freq(int rotary_dim, double base, const RopeScaling* scaling) {
  const int half = rotary_dim / 2;
  std::vector<float> inv(size_t(half > 0 ? half : 0));
  const double fbase = double(float(base));  // torch computes base ** t with base in the tensor's dtype
  for (int i = 0; i < half; i++) {
    const float e = float(2 * i) / float(rotary_dim);
    inv[size_t(i)] = 1.0f / float(std::pow(fbase, double(e)));
  }
  if (!scaling) return inv;
  const float factor = float(scaling->factor), lo = float(scaling->low_freq_factor);
  const float old = float(scaling->original_max_position);
  const float low_wavelen = float(double(scaling->original_max_position) / scaling->low_freq_factor);
  const float high_wavelen = float(double(scaling->original_max_position) / scaling->high_freq_factor);
  const float two_pi = float(2.0 * M_PI), span = float(scaling->high_freq_factor - scaling->low_freq_factor);
  for (float& f : inv) {
    const float wavelen = (1.0f / f) * two_pi;  // torch: 2 pi / t = t.reciprocal() * 2 pi
    float llama = wavelen > low_wavelen ? f / factor : f;
    const float smooth = ((1.0f / wavelen) * old - lo) / span;  // old / wavelen, then - lo, then / (hi - lo)
    const float smoothed = ((1.0f - smooth) * llama) / factor + smooth * llama;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    if (medium) llama = smoothed;
    f = llama;
  }
  return inv;
}

RopeTable make_rope_table(int rotary_dim, int max_positions, const std::vector<float>& inv_freq) {
  RopeTable t;
  t.rotary_dim = rotary_dim;
  t.max_positions = max_positions;
  const int half = rotary_dim / 2;
  if (half <= 0 || max_positions <= 0) return t;
  t.cos.resize(size_t(max_positions) * half);
  t.sin.resize(size_t(max_positions) * half);
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(max_positions) * half))
  for (int p = 0; p < max_positions; p++)
    for (int i = 0; i < half; i++) {
      const float ang = float(p) * inv_freq[size_t(i)];  // fp32, as torch.outer in fp32
      t.cos[size_t(p) * half + i] = float(std::cos(double(ang)));
      t.sin[size_t(p) * half + i] = float(std::sin(double(ang)));
    }
  return t;
}

namespace {

// Rotates one vector v (rotary_dim elements) by the angles with cosines c and sines s (rotary_dim/2 each).
// kInverse: by -angle. Every output is fl(fl(a*c) +- fl(b*s)), the vector and scalar paths alike.
template <bool kInverse>
inline void rotate_half(float* v, int half, const float* c, const float* s) {
  float* v1 = v;
  float* v2 = v + half;
  int i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 a = _mm256_loadu_ps(v1 + i), b = _mm256_loadu_ps(v2 + i);
    const __m256 cc = _mm256_loadu_ps(c + i), ss = _mm256_loadu_ps(s + i);
    if constexpr (!kInverse) {
      _mm256_storeu_ps(v1 + i, _mm256_sub_ps(_mm256_mul_ps(a, cc), _mm256_mul_ps(b, ss)));
      _mm256_storeu_ps(v2 + i, _mm256_add_ps(_mm256_mul_ps(b, cc), _mm256_mul_ps(a, ss)));
    } else {
      _mm256_storeu_ps(v1 + i, _mm256_add_ps(_mm256_mul_ps(a, cc), _mm256_mul_ps(b, ss)));
      _mm256_storeu_ps(v2 + i, _mm256_sub_ps(_mm256_mul_ps(b, cc), _mm256_mul_ps(a, ss)));
    }
  }
  for (; i < half; i++) {
    const float a = v1[i], b = v2[i];
    if constexpr (!kInverse) {
      v1[i] = a * c[i] - b * s[i];
      v2[i] = b * c[i] + a * s[i];
    } else {
      v1[i] = a * c[i] + b * s[i];
      v2[i] = b * c[i] - a * s[i];
    }
  }
}

template <bool kInverse>
inline void rotate_interleaved(float* v, int half, const float* c, const float* s) {
  const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  int i = 0;  // pair index
  for (; i + 4 <= half; i += 4) {
    const __m256 x = _mm256_loadu_ps(v + 2 * i);
    const __m256 cc = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(c + i)), dup);
    const __m256 ss = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(s + i)), dup);
    const __m256 p = _mm256_mul_ps(x, cc);
    const __m256 q = _mm256_mul_ps(_mm256_permute_ps(x, 0xB1), ss);  // (x[2i+1], x[2i]) * s
    // addsub: even lanes p - q, odd lanes p + q. The inverse negates q (exactly).
    _mm256_storeu_ps(v + 2 * i, _mm256_addsub_ps(p, kInverse ? _mm256_xor_ps(q, _mm256_set1_ps(-0.0f)) : q));
  }
  for (; i < half; i++) {
    const float a = v[2 * i], b = v[2 * i + 1];
    if constexpr (!kInverse) {
      v[2 * i] = a * c[i] - b * s[i];
      v[2 * i + 1] = b * c[i] + a * s[i];
    } else {
      v[2 * i] = a * c[i] + b * s[i];
      v[2 * i + 1] = b * c[i] - a * s[i];
    }
  }
}

template <bool kInverse>
void rope_apply(float* x, int rows, long ld, int heads, long head_stride, int rotary_dim, const int32_t* positions,
                const RopeTable& t, bool interleaved) {
  const int half = rotary_dim / 2, tstride = t.rotary_dim / 2;
  if (rows <= 0 || heads <= 0 || half <= 0) return;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(long(rows) * heads * rotary_dim * 2))
  for (int r = 0; r < rows; r++) {
    const size_t off = size_t(positions[r]) * size_t(tstride);
    const float* c = t.cos.data() + off;
    const float* s = t.sin.data() + off;
    float* row = x + size_t(r) * size_t(ld);
    for (int j = 0; j < heads; j++) {
      float* v = row + size_t(j) * size_t(head_stride);
      if (interleaved)
        rotate_interleaved<kInverse>(v, half, c, s);
      else
        rotate_half<kInverse>(v, half, c, s);
    }
  }
}

}  // namespace

void rope_forward(float* x, int rows, long ld, int heads, long head_stride, int rotary_dim, const int32_t* positions,
                  const RopeTable& t, bool interleaved) {
  rope_apply<false>(x, rows, ld, heads, head_stride, rotary_dim, positions, t, interleaved);
}

void rope_backward(float* x, int rows, long ld, int heads, long head_stride, int rotary_dim, const int32_t* positions,
                   const RopeTable& t, bool interleaved) {
  rope_apply<true>(x, rows, ld, heads, head_stride, rotary_dim, positions, t, interleaved);
}

}  // namespace loom::cpu
