#pragma once
// TEMPORARY SHIM (replaced by the kernels branch)
#include <cstdint>
#include <vector>
namespace loom::cpu {
struct RopeScaling { double factor = 8, low_freq_factor = 1, high_freq_factor = 4; int original_max_position = 8192; };
struct RopeTable { int rotary_dim = 0, max_positions = 0; std::vector<float> cos, sin; };
std::vector<float> rope_inv_freq(int rotary_dim, double base, const RopeScaling* scaling);
RopeTable make_rope_table(int rotary_dim, int max_positions, const std::vector<float>& inv_freq);
void rope_forward(float* x, int rows, long ld, int heads, long head_stride, int rotary_dim, const int32_t* positions,
                  const RopeTable& t, bool interleaved);
void rope_backward(float* x, int rows, long ld, int heads, long head_stride, int rotary_dim, const int32_t* positions,
                   const RopeTable& t, bool interleaved);
}
