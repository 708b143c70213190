#pragma once
// Scratch shared by all layers of one model: buffers that only live within one layer's forward or
// backward call (the model runs one layer at a time), sized once for the largest micro-batch.
#include <memory>

#include "loom/core/tensor.h"

namespace loom {

struct SharedWorkingSet;
namespace cpu {
struct RopeTable;
}

// "rows" are all tokens of a micro-batch; "local rows" the ones this rank holds of the residual stream
// (fewer only with sequence parallelism); ffn and qkv widths are this rank's tensor-parallel share.
struct Workspace {
  Tensor partial; // [rows, hidden]       row-parallel partial sums; all-row gradients
  Tensor tmp;     // [local rows, hidden] branch output before bias-dropout-add; its gradient
  Tensor dres;    // [local rows, hidden] gradient of the mid-block residual stream
  Tensor dnorm;   // [rows, max(hidden, attention width)] gradient of a norm output / attention output
  Tensor dffn;    // [rows, ffn]          gradient of the MLP's inner activation
  Tensor logits;  // [chunk, vocab]   output-layer logits, a chunk of rows at a time
  int logit_chunk_rows = 0;
  // bf16 GEMM operands (--bf16): a linear's input, its output gradient and its weight (or the output
  // layer's vocabulary weight); undefined otherwise. The logit gradients are narrowed inside `logits`.
  Tensor bf16_in, bf16_out, bf16_w;
  // One block's activations in fp32, shared by every block (see SavedTensors): rebuilt before its backward
  // (recompute) or widened from half-precision storage; and the output of a recomputed forward.
  std::shared_ptr<SharedWorkingSet> block_working;
  Tensor recompute_out;
  // Rotary embedding cos/sin table (RoPE models), shared by every block.
  std::shared_ptr<cpu::RopeTable> rope;
};

}  // namespace loom
