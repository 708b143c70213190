#pragma once
// The output layer fused with softmax cross-entropy, in chunks of rows so the full N x V logits never
// exist: for each chunk, logits = x @ W^T (W is the V x C word embedding when tied), then the loss per
// row, and, when gradients are asked for, dlogits = (softmax - onehot) * row_scale[r] in place,
// dx = dlogits @ W and dW += dlogits^T @ x.
#include <cstdint>
#include <functional>

namespace loom::cpu {

// Rows of logits the models' output layers materialise at once (DecoderModel, CoCa's multimodal
// decoder; `loom plan` times the output layer's GEMMs in chunks of as many rows): enough for an efficient
// GEMM, small enough to keep the logits a fraction of the full N x V (512 x 50304 floats = 103 MB).
// Measured on the 16M and 124M GPTs: 512 rows beat 256 by 30% (the dW GEMM's inner dimension is the
// chunk) and tie 1024.
constexpr int kLmHeadChunkRows = 512;

struct LmHeadScratch {
  float* logits;  // chunk_rows x V floats
  int chunk_rows;
  // bf16 GEMMs (--bf16) when set: W (V x C) and a chunk of x (chunk_rows x C) rounded to bf16 here, the
  // logit gradients narrowed in place in `logits`; multiplied with fp32 accumulation.
  uint16_t* w16 = nullptr;
  uint16_t* x16 = nullptr;
  // W is C x V (logits = x @ W, as open_clip's text_projection [width, vocab]) instead of V x C, and dW
  // is C x V too. fp32 GEMMs only (w16 must be null).
  bool w_transposed = false;
  // Keep every row's logit gradient (N x V, rows n0.. of each chunk computed in place at keep + n0 V)
  // for lm_head_weight_grad (bf16 GEMMs: each row narrowed in place, for lm_head_weight_grad_bf16) instead
  // of chunk by chunk in `logits`. W not transposed.
  float* keep = nullptr;
  // W already in bf16 (the stored weight), multiplied instead of W rounded into w16 (then w16 may be
  // null: either makes the GEMMs bf16).
  const uint16_t* w16_stored = nullptr;
};

// Vocabulary-parallel cross-entropy (Megatron's): W is this rank's shard, rows [vocab_start,
// vocab_start + V) of the full output table, and labels are global ids. Per chunk of rows the row
// maxima are combined with all_reduce_max and the sums of exponentials and target logits with
// all_reduce_sum (collectives over the group: every rank makes the same calls). The losses are then
// those of the full vocabulary; dx is this shard's partial input gradient (the caller sums it over
// the group) and dW this shard's weight gradient.
struct VocabParallel {
  int vocab_start = 0;
  std::function<void(float*, int)> all_reduce_max;
  std::function<void(float*, int)> all_reduce_sum;
};

// loss[r] = logsumexp(logits[r]) - logits[r][labels[r]] for every row (unscaled, per token).
// If dx is non-null: dx (N x C) is overwritten, dW (V x C) accumulates (unless null: the logit gradients
// are then kept, see LmHeadScratch::keep); row_scale[r] multiplies the
// gradient of row r (loss mask / number of tokens / micro-batches / loss scale: the caller's choice).
// vp (may be null): vocabulary-parallel shard, see VocabParallel.
void lm_head_cross_entropy(const float* x, const float* W, const int32_t* labels, const float* row_scale,
                           float* loss, float* dx, float* dW, int N, int V, int C, LmHeadScratch scratch,
                           const VocabParallel* vp = nullptr);

// The weight gradient the call above left out: dW (V x C) += dlogits^T x over the same chunks of rows,
// in the same order, so the bits are those of the fused call.
void lm_head_weight_grad(const float* x, const float* dlogits, float* dW, int N, int V, int C, int chunk_rows);
// The same for a call with bf16 GEMMs: `dlogits` holds the kept rows narrowed to bf16 in place (row stride
// 2V bf16 values); each chunk of x is rounded to bf16 into `x16` (chunk_rows x C) again, as the fused call did.
void lm_head_weight_grad_bf16(const float* x, const float* dlogits, float* dW, int N, int V, int C, int chunk_rows,
                              uint16_t* x16);

// Plain logits for generation: logits (N x V) = x @ W^T.
void lm_head_logits(const float* x, const float* W, float* logits, int N, int V, int C);

// Row-wise softmax in place over N rows of width V (numerically stable).
void softmax_rows(float* x, int N, int V);

}  // namespace loom::cpu
