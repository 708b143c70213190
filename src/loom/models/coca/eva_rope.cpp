#include "loom/models/coca/eva_rope.h"

#include <cmath>
#include <stdexcept>

namespace loom {

cpu::RopeTable make_eva_rope_table(int head_dim, int grid, int pt_grid, double base) {
  if (head_dim % 4 != 0 || grid <= 0 || pt_grid <= 0)
    throw std::invalid_argument("EVA 2D RoPE needs a head size divisible by 4 and a positive grid");
  const int half = head_dim / 2, nf = half / 2;
  const std::vector<float> freqs = cpu::rope_inv_freq(half, base, nullptr);  // 1 / base^(2i / half)
  std::vector<float> t(static_cast<size_t>(grid));
  for (int i = 0; i < grid; i++) t[size_t(i)] = (float(i) / float(grid)) * float(pt_grid);  // torch: fp32 steps
  cpu::RopeTable tab;
  tab.rotary_dim = head_dim;
  tab.max_positions = grid * grid;
  tab.cos.resize(size_t(grid) * grid * half);
  tab.sin.resize(tab.cos.size());
  for (int r = 0; r < grid; r++)
    for (int c = 0; c < grid; c++) {
      const size_t row = (size_t(r) * grid + c) * size_t(half);
      for (int i = 0; i < half; i++) {
        const float ang = i < nf ? t[size_t(r)] * freqs[size_t(i)] : t[size_t(c)] * freqs[size_t(i - nf)];
        tab.cos[row + size_t(i)] = float(std::cos(double(ang)));
        tab.sin[row + size_t(i)] = float(std::sin(double(ang)));
      }
    }
  return tab;
}

}  // namespace loom
