#pragma once
// Token + learned position embedding: out[r] = wte[tokens[r]] + wpe[positions[r]] for N rows of width C.
// Vocabulary-parallel tables: wte holds rows [vocab_start, vocab_end) of the full table; a token in that
// range reads wte[token - vocab_start], a token outside it contributes zeros (the partial rows are
// summed over the group by the caller). With accumulate the result is added to out instead.
#include <cstdint>
#include <limits>

namespace loom::cpu {

void embedding_forward(const int32_t* tokens, const int32_t* positions, const float* wte, const float* wpe,
                       float* out, int N, int C, int vocab_start = 0,
                       int vocab_end = std::numeric_limits<int>::max(), bool accumulate = false);
// dwte[tokens[r]] += dout[r], dwpe[positions[r]] += dout[r]; race-free under threads (rows that share a
// token are summed in a fixed order, so results are deterministic). wpe/dwpe may be null (no positions).
// Only tokens in [vocab_start, vocab_end) touch dwte (at row token - vocab_start).
void embedding_backward(const float* dout, const int32_t* tokens, const int32_t* positions, float* dwte,
                        float* dwpe, int N, int C, int vocab_start = 0,
                        int vocab_end = std::numeric_limits<int>::max());

}  // namespace loom::cpu
