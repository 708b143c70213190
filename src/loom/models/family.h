#pragma once
// The model-family registry (torchtitan's ModelSpec, Megatron-Core's layer specs): what `loom` needs to
// know about a family by name. GPT and Llama are the same decoder built from the same layers (Llama is
// GPT plus flags, as in Megatron-Core), so they share the builder and the counts and differ in the
// Megatron flags they imply and in their Hugging Face names. A new family is a new entry here and a
// new file in models/, not a branch in the trainer.
#include <cstdint>
#include <string>
#include <vector>

#include "loom/models/decoder_counts.h"

namespace loom {

struct ModelFamily {
  std::string name;     // --model NAME
  std::string summary;  // for --help
  // Megatron flags the family implies, placed before the user's (so explicit flags win) and shown in the
  // argument block like any other.
  std::vector<std::string> flags;
  // Counts from the shape alone (loom plan allocates nothing): parameters of the whole model, of one
  // block per tensor-parallel rank, FLOPs of one iteration, per-layer costs [embedding, blocks.., head]
  // for --pipeline-split cost.
  int64_t (*total_params)(const TransformerConfig&, int tensor_parallel);
  int64_t (*layer_params)(const TransformerConfig&, int tensor_parallel);
  double (*flops_per_iteration)(const TransformerConfig&, int64_t batch);
  std::vector<double> (*layer_costs)(const ModelConfig&);
  // Leaf modules of one block as a PyTorch implementation of the family hooks them (Hugging Face's
  // names: GPT-2 c_attn, c_proj, c_fc, act, c_proj; Llama q, k, v, o, gate, act_fn, up, down). The
  // pipeline splitter of reference log 003 balances these counts (--pipeline-split simple) and its
  // profile table counts one op per module call.
  int block_modules;
};

// Modules of [embedding, block 0 .. block L-1, output layer] (1, block_modules each, 1): the costs
// --pipeline-split simple balances.
std::vector<double> module_counts(const ModelFamily& family, const TransformerConfig& cfg);

// Throws UserError naming the known families.
const ModelFamily& model_family(const std::string& name);
std::vector<std::string> model_family_names();

// Named configurations (--model-preset): a family and the flags of a published model.
struct ModelPreset {
  std::string name, family, summary;
  std::vector<std::string> flags;
};
std::vector<std::string> model_preset_names();
// Null when unknown.
const ModelPreset* find_model_preset(const std::string& name);

// The flags of a command (argv holds flags only, as the commands receive them) with the preset's and the
// family's flags (from --model-preset / --model) placed before the user's own, so the user's win. Throws
// UserError on an unknown preset or family.
std::vector<std::string> expand_model_flags(int argc, char** argv);

}  // namespace loom
