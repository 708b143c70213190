#pragma once
// EVA-02's 2D rotary embedding (EVA-CLIP's VisionRotaryEmbeddingFast) as a cpu::RopeTable for
// cpu::rope_forward/rope_backward with interleaved pairs. Per head of size D, the first D/2 channels are
// rotated by the patch's row and the last D/2 by its column: with half = D/2,
//   freqs = 1 / base^(arange(0, half, 2) / half)        (half/2 frequencies, fp32 as torch computes them)
//   t     = arange(grid) / grid * pt_grid               (EVA's intp_freq position scaling, fp32)
// each frequency repeated twice (channel pairs (2i, 2i+1) share one angle), rows then columns
// concatenated, so patch p = row * grid + col has angles [t[row] * freqs, t[col] * freqs] over its D/2
// pairs. EVA prints the expanded table as "Shape of rope freq: [grid*grid, D]" (196 x 64 for B/16); this
// one stores one angle per pair: cos/sin [grid*grid, D/2], position index = patch index.
#include "loom/kernels/cpu/rope.h"

namespace loom {

cpu::RopeTable make_eva_rope_table(int head_dim, int grid, int pt_grid, double base);

}  // namespace loom
