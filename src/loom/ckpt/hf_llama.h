#pragma once
// Hugging Face transformers' Llama (LlamaForCausalLM) to and from Loom.
//
// HF names and layouts against Loom's (Megatron-core's):
//   model.embed_tokens.weight [V, h]            embedding.word_embeddings.weight [padded V, h] (zero rows added)
//   model.layers.N.self_attn.{q,k,v}_proj      decoder.layers.N.self_attention.linear_qkv.weight, fused in
//     [H*D, h], [G*D, h], [G*D, h]               Megatron's per-group layout: for each group g, the query rows
//                                                of heads g*r .. g*r+r-1, then k_g, then v_g (r = H/G)
//   self_attn.o_proj [h, H*D]                  self_attention.linear_proj.weight
//   mlp.gate_proj / up_proj [f, h]             mlp.linear_fc1_gate.weight / mlp.linear_fc1_up.weight
//   mlp.down_proj [h, f]                       mlp.linear_fc2.weight
//   input_layernorm / post_attention_layernorm input_layernorm / pre_mlp_layernorm (RMSNorm weights)
//   model.norm.weight                          decoder.final_layernorm.weight
//   lm_head.weight [V, h] (untied only)        output_layer.weight [padded V, h]
// HF's rotary embedding is rotate-half (pairs (i, i + D/2)), Loom's default; a model trained with
// --rotary-interleaved (pairs (2i, 2i+1)) is exported with each head's q/k rows permuted so that
// rotate-half computes the same attention.
#include <string>

#include "loom/models/decoder_model.h"

namespace loom {

// Reads DIR/config.json and DIR/model.safetensors (or the shards of DIR/model.safetensors.index.json) and
// writes `output`: one safetensors file of full Loom-named tensors (the HF tensors' dtype kept: bf16, fp16 or
// fp32) with the model's shape in its metadata (model_config_metadata), the vocabulary padded with zero rows
// to a multiple of `divisible_by`. `loom train --load FILE` reads it into any parallel layout. Every
// problem (missing file or tensor, wrong shape, malformed JSON, an architecture or RoPE type Loom does not
// have) is a UserError naming the file and tensor; the output is written under a temporary name and
// renamed, so it is never half-written. Returns the model's configuration.
ModelConfig import_hf_llama(const std::string& dir, const std::string& output, int divisible_by = 128);

// True when the model is a Llama (RMSNorm, SwiGLU, RoPE), which export_hf_llama writes.
bool is_llama_config(const ModelConfig& cfg);

// `model` must hold full tensors (one process). Writes DIR/model.safetensors and then DIR/config.json
// (each atomically; config.json last, so a directory with it is complete); creates DIR. UserError when
// the model has no HF Llama form (linear biases, partial rotary).
void export_hf_llama(const DecoderModel& model, const std::string& dir);

}  // namespace loom
