#pragma once
// A model's parameters as a safetensors file, under their Megatron-core names, with the model's shape
// in the metadata so a file of another shape is refused with a clear error instead of loaded wrongly.
#include <map>
#include <string>

#include "loom/layers/param_store.h"
#include "loom/models/decoder_counts.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

std::map<std::string, std::string> model_config_metadata(const ModelConfig& cfg);
ModelConfig model_config_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path);

// The first setting that defines a model (layers, widths, heads, query groups, kv channels, ffn, norm and
// its epsilon, activation, positions and RoPE settings, vocabulary, tying, biases) in which a model
// recorded as model_config_metadata `recorded` (a weights file's metadata, a checkpoint's "args") differs
// from `model`. Keys the record lacks (files from older versions) are not compared. One check for weights
// files and checkpoints alike; empty `flag` when they agree.
struct ModelDifference {
  std::string flag;                // the flag that sets it, e.g. --num-attention-heads
  std::string recorded, current;  // its value in the record and in `model`
};
ModelDifference model_difference(const std::map<std::string, std::string>& recorded, const ModelConfig& model);

// Writes full tensors. Tensor-parallel shards are gathered over `tp` (collective over the group; only
// tensor-parallel rank 0 writes).
void save_weights(const std::string& path, const ParamStore& params, const std::map<std::string, std::string>& meta,
                  const TensorParallel& tp = {});
// Every parameter of `params` must be present with its full shape (fp32, bf16 or fp16 in the file); a
// tensor-parallel shard reads its slice, so weights saved by any layout load into any other. With `model`
// (the configuration the weights are loaded for) given: a file with Loom's metadata must describe the same
// architecture (norm, activation, positions and RoPE settings, query groups, tying, epsilon, vocabulary:
// what no tensor shape shows), and when the file records the same tokenizer vocabulary the word embedding
// and output layer may be padded to another row count (make_vocab_size_divisible_by x TP differs between
// layouts): the real rows are read, the model's padding rows are zero.
void load_weights(const std::string& path, ParamStore& params, const ModelConfig* model = nullptr);

}  // namespace loom
