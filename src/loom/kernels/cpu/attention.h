#pragma once
// Causal multi-head self-attention on a fused QKV activation, memory-light (flash-style): the forward
// keeps only the output and one log-sum-exp per (batch, head, query); the backward recomputes the
// scores block by block. No T x T matrix per head is ever stored; scratch is a block of query rows by
// T keys per thread.
//
// Layout (Megatron's): qkv is [B*T, 3*H*D] with row b*T+t; for head h the columns
// [h*3*D, h*3*D+D) are q, the next D are k, the next D are v. out is [B*T, H*D], head h at columns
// [h*D, (h+1)*D). lse is [B, H, T]. Scores are scaled by 1/sqrt(D).
// Attention dropout (probability p, mask from counter-based RNG stream `key`, indexed by
// ((b*H + h)*T + query)*T + key) is applied to the softmax probabilities, as Megatron does.
// Tensor parallel: qkv holds H local heads, which are heads [head_offset, head_offset + H) of
// total_heads; the dropout mask is indexed by the global head, ((b*total_heads + head_offset + h)*T +
// query)*T + key, so it does not depend on the tensor-parallel size. total_heads = 0 means H.
#include <cstdint>

namespace loom::cpu {

struct AttentionShape {
  int B, T, H, D;
  int head_offset = 0;
  int total_heads = 0;
  // Document masking (Megatron's --reset-attention-mask): query t of sample b sees keys
  // [key_start[b*T + t], t] only. Null: plain causal.
  const int32_t* key_start = nullptr;
  int groups = 0;       // TEMPORARY SHIM
  bool causal = true;   // TEMPORARY SHIM
};

void attention_forward(const float* qkv, float* out, float* lse, AttentionShape s, float dropout_p,
                       uint64_t key);

// dqkv is overwritten (all of q, k and v gradients). Needs qkv, out and lse of the forward.
void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse, float* dqkv,
                        AttentionShape s, float dropout_p, uint64_t key);

}  // namespace loom::cpu
