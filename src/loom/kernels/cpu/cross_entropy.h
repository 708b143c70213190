#pragma once
// The output layer fused with softmax cross-entropy, in chunks of rows so the full N x V logits never
// exist: for each chunk, logits = x @ W^T (W is the V x C word embedding when tied), then the loss per
// row, and, when gradients are asked for, dlogits = (softmax - onehot) * row_scale[r] in place,
// dx = dlogits @ W and dW += dlogits^T @ x.
#include <cstdint>

namespace loom::cpu {

struct LmHeadScratch {
  float* logits;  // chunk_rows x V floats
  int chunk_rows;
};

// loss[r] = logsumexp(logits[r]) - logits[r][labels[r]] for every row (unscaled, per token).
// If dx is non-null: dx (N x C) is overwritten, dW (V x C) accumulates; row_scale[r] multiplies the
// gradient of row r (loss mask / number of tokens / micro-batches / loss scale: the caller's choice).
void lm_head_cross_entropy(const float* x, const float* W, const int32_t* labels, const float* row_scale,
                           float* loss, float* dx, float* dW, int N, int V, int C, LmHeadScratch scratch);

// Plain logits for generation: logits (N x V) = x @ W^T.
void lm_head_logits(const float* x, const float* W, float* logits, int N, int V, int C);

// Row-wise softmax in place over N rows of width V (numerically stable).
void softmax_rows(float* x, int N, int V);

}  // namespace loom::cpu
