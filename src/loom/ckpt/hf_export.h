#pragma once
// Export to Hugging Face transformers' GPT-2 layout (GPT2LMHeadModel): config.json and model.safetensors
// with HF tensor names. Differences from Megatron handled here: HF's Conv1D stores weights as [in, out]
// (transposed), its fused c_attn orders columns [all queries | all keys | all values] where Megatron
// interleaves [q k v] per head, and the word embedding is cut back from the padded vocabulary to the
// tokenizer's (as transformers' own Megatron converter does).
#include <string>

#include "loom/models/decoder_model.h"

namespace loom {

// `model` must hold full tensors (one process, no tensor parallelism). Writes DIR/config.json and
// DIR/model.safetensors (atomically each); creates DIR.
void export_hf_gpt2(const DecoderModel& model, const std::string& dir);

}  // namespace loom
