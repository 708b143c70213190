#pragma once
// Token + learned position embedding: out[r] = wte[tokens[r]] + wpe[positions[r]] for N rows of width C.
#include <cstdint>

namespace loom::cpu {

void embedding_forward(const int32_t* tokens, const int32_t* positions, const float* wte, const float* wpe,
                       float* out, int N, int C);
// dwte[tokens[r]] += dout[r], dwpe[positions[r]] += dout[r]; race-free under threads (rows that share a
// token are summed in a fixed order, so results are deterministic). wpe/dwpe may be null (no positions).
void embedding_backward(const float* dout, const int32_t* tokens, const int32_t* positions, float* dwte,
                        float* dwpe, int N, int C);

}  // namespace loom::cpu
