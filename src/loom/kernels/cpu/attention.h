#pragma once
// Multi-head self- and cross-attention, memory-light (flash-style): the forward keeps only the output and
// one log-sum-exp per (batch, head, query); the backward recomputes the scores block by block. No T x T
// matrix per head is ever stored; scratch is a block of query rows by Tk keys per thread.
//
// Fused layout (Megatron's): qkv is [B*T, (H + 2G)*D] with row b*T+t, in G key/value groups (G = H for
// plain multi-head attention, fewer for grouped-query attention, 1 for multi-query). Group g occupies
// columns [g*(H/G + 2)*D, (g+1)*(H/G + 2)*D): the q of its H/G query heads (head h = g*H/G + j at
// g*(H/G + 2)*D + j*D), then its k (D columns), then its v (D columns). With G = H this is Megatron's
// per-head layout: head h at columns [h*3*D, h*3*D+D) is q, the next D are k, the next D are v.
// out is [B*T, H*D], head h at columns [h*D, (h+1)*D). lse is [B, H, T]. Scores are scaled by 1/sqrt(D).
// Query head h attends with the keys and values of its group h / (H/G).
//
// Attention dropout (probability p, mask from counter-based RNG stream `key`, indexed by
// ((b*H + h)*T + query)*Tk + key, h the query head) is applied to the softmax probabilities, as Megatron
// does. Tensor parallel: the operands hold H local query heads (and G local groups), which are query heads
// [head_offset, head_offset + H) of total_heads; the dropout mask is indexed by the global query head,
// ((b*total_heads + head_offset + h)*T + query)*Tk + key, so it does not depend on the tensor-parallel
// size. total_heads = 0 means H.
//
// Results are bitwise independent of the thread count: forward tasks are (b, h, query block), backward
// tasks are (b, group), and a group's dK/dV sum over its query heads in head order.
#include <cstdint>

namespace loom::cpu {

struct AttentionShape {
  int B, T, H, D;  // batch, queries per sample, (local) query heads, head size
  int head_offset = 0;
  int total_heads = 0;
  // Document masking (Megatron's --reset-attention-mask): query t of sample b sees keys
  // [key_start[b*T + t], t] only. Null: plain causal. Only with causal attention (else invalid_argument).
  const int32_t* key_start = nullptr;
  // Local key/value groups (grouped-query attention); H must be a multiple. 0 means H (multi-head).
  int groups = 0;
  // true: query t sees keys [0, t] (GPT, Llama); false: every query sees every key (ViT, encoders,
  // cross attention, attentional pooling).
  bool causal = true;
};

// Self-attention on the fused qkv (layout above). Throws std::invalid_argument for an impossible shape
// (H not a multiple of groups, key_start without causal).
void attention_forward(const float* qkv, float* out, float* lse, AttentionShape s, float dropout_p,
                       uint64_t key);

// dqkv is overwritten (all of q, k and v gradients; a group's k and v gradients are the sums over its
// query heads). Needs qkv, out and lse of the forward.
void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse, float* dqkv,
                        AttentionShape s, float dropout_p, uint64_t key);

// Separate operands, also for cross attention (Tk keys per sample, Tk != T allowed when !s.causal; causal
// needs Tk == T, else std::invalid_argument): q is [B*T, ldq] with query head h at columns [h*D, (h+1)*D);
// k and v are [B*Tk, ldkv] each (row b*Tk + key) with group g at columns [g*D, (g+1)*D) (G = s.groups, or
// H). k and v may be two halves of one row (e.g. a fused kv projection: v = k + G*D, ldkv = 2*G*D).
// out is [B*T, H*D] and lse [B, H, T] as above; the dropout mask is ((b*H + h)*T + query)*Tk + key.
// For Tk == T, causal, and the heads of a fused qkv this computes what attention_forward computes.
void attention_forward_qkv(const float* q, long ldq, const float* k, const float* v, long ldkv, float* out, float* lse,
                           AttentionShape s, int Tk, float dropout_p, uint64_t key);

// dq (layout of q: [B*T, ldq]), dk and dv (layout of k and v: [B*Tk, ldkv]) are overwritten at the head
// and group columns; other columns are untouched (so dk and dv may be halves of one dkv buffer).
void attention_backward_qkv(const float* dout, const float* q, long ldq, const float* k, const float* v, long ldkv,
                            const float* out, const float* lse, float* dq, float* dk, float* dv, AttentionShape s,
                            int Tk, float dropout_p, uint64_t key);

}  // namespace loom::cpu
