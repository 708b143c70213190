#pragma once
// Rotary position embedding (RoPE; Su et al.), applied in place to the query and key heads inside a
// row-major activation, as Megatron-Core's apply_rotary_pos_emb and Hugging Face's apply_rotary_pos_emb
// do in fp32. Frequencies, the cos/sin table and the rotation follow PyTorch's fp32 arithmetic step by
// step (no fused multiply-adds), so the results equal a PyTorch reference to about 1e-7.
#include <cstdint>
#include <vector>

namespace loom::cpu {

// Llama 3's frequency scaling (Hugging Face's rope_type "llama3", Megatron's apply_rope_scaling): with
// wavelen = 2 pi / inv_freq, frequencies whose wavelength is below original_max_position / high_freq_factor
// are kept, those above original_max_position / low_freq_factor are divided by factor, and those between
// are interpolated: s = (original_max_position / wavelen - low_freq_factor) / (high_freq_factor -
// low_freq_factor), inv = (1 - s) inv / factor + s inv. Defaults are Llama 3.1's (Llama 3.2: factor 32).
struct RopeScaling {
  double factor = 8;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  int original_max_position = 8192;
};

// inv_freq[i] = 1 / base^(2i / rotary_dim) for i < rotary_dim / 2, then llama3 scaling if scaling is
// non-null. Computed as PyTorch computes it in fp32 (exponent 2i/dim in fp32, the power rounded to fp32,
// every scaling step in fp32 with torch's operation order: `2 pi / t` is `t.reciprocal() * 2 pi`), so each
// value equals torch's to within 1 ulp (torch's pow is not always correctly rounded; this one is).
// rotary_dim must be even and positive.
std::vector<float> rope_inv_freq(int rotary_dim, double base, const RopeScaling* scaling);

// cos/sin of the rotation angles for positions [0, max_positions): cos[p * (rotary_dim/2) + i] =
// cos(float(p) * inv_freq[i]), the angle a product in fp32 as torch.outer(positions_fp32, inv_freq_fp32),
// its cos/sin evaluated in double and rounded (correctly rounded, within 1 ulp of torch.cos/torch.sin).
struct RopeTable {
  int rotary_dim = 0, max_positions = 0;
  std::vector<float> cos, sin;  // [max_positions, rotary_dim / 2] each
};
RopeTable make_rope_table(int rotary_dim, int max_positions, const std::vector<float>& inv_freq);

// In place, for every row r < rows and head j < heads: the vector v = x + r*ld + j*head_stride has its
// first rotary_dim elements rotated by the angles of position positions[r] (0 <= positions[r] <
// t.max_positions); elements [rotary_dim, head size) are untouched (partial rotary). rotary_dim is even and
// at most t.rotary_dim (normally equal; the table's first rotary_dim/2 frequencies are used).
//   interleaved = false (Megatron/HF/Llama "rotate half"): pairs (i, i + rotary_dim/2), angle index i:
//     v[i] = v[i] c - v[i+h] s, v[i+h] = v[i+h] c + v[i] s.
//   interleaved = true (GPT-J, EVA-02, Megatron --rotary-interleaved): pairs (2i, 2i+1), angle index i.
// Layouts: Megatron's per-head fused QKV (MHA, head h at columns h*3D: q, k, v) rotates q with x = qkv,
// heads = H, head_stride = 3D, and k with x = qkv + D. Megatron's GQA layout (group g at columns
// g*(H/G + 2)*D: H/G query heads, then k, then v) rotates, for each group g, the H/G query heads and the key
// head together: x = qkv + g*(H/G + 2)*D, heads = H/G + 1, head_stride = D. ld is the row stride in floats.
// Rows are independent (threaded over rows); the result does not depend on the thread count.
void rope_forward(float* x, int rows, long ld, int heads, long head_stride, int rotary_dim, const int32_t* positions,
                  const RopeTable& t, bool interleaved);
// The transpose of rope_forward (a rotation by -angle), in place on a gradient with the same layout:
// dx_i = dy_i c + dy_{i+h} s, dx_{i+h} = dy_{i+h} c - dy_i s (pairs as in the forward).
void rope_backward(float* x, int rows, long ld, int heads, long head_stride, int rotary_dim, const int32_t* positions,
                   const RopeTable& t, bool interleaved);

}  // namespace loom::cpu
