#pragma once
// Megatron-LM's and DeepSpeed's own command lines, run by `loom train` unchanged apart from paths. Every
// flag of the reference runs is in exactly one class (the table in megatron_compat_table.cpp):
//  - Implemented: changes what is computed and Loom computes it as Megatron does (TrainArgs' own flags, or
//    the ones declared here: the sample-based schedule, Megatron v1's and DeepSpeed's spellings, the old
//    names of recompute, the GELU variants);
//  - NoEffect: only chooses a GPU implementation (a fusion, a kernel library, an overlap, a file format);
//    accepted, and the ones given are listed once at start-up;
//  - Refused: a feature Loom does not have; accepted at Megatron's default value (which leaves the feature
//    off), otherwise one `loom: error:` line naming the feature;
//  - Derived: not a flag, a value Megatron computes and prints in its argument block;
//  - Tensorboard / PendingPipeline: flags another branch declares (TensorBoard, MegatronDPP's schedule).
#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loom {

class ArgParser;
struct TrainArgs;

enum class FlagClass { Implemented, NoEffect, Refused, Derived, Tensorboard, PendingPipeline };
enum class FlagKind { StoreTrue, StoreFalse, Value, Values };

struct MegatronFlag {
  const char* dest;              // the name in Megatron's argument dump
  const char* flag;              // the spelling on the command line ("" for derived values)
  FlagClass cls;
  FlagKind kind;
  const char* megatron_default;  // as Megatron's dump prints it when the flag is not given
  const char* note;              // Refused: the missing feature; otherwise what the flag does here
};

const std::vector<MegatronFlag>& megatron_flag_table();
const char* flag_class_name(FlagClass c);

// The values Megatron's validate_args derives after parsing, shown in the argument block as Megatron shows
// them (kv_channels from the heads, add_qkv_bias from add_bias_linear, the weight-decay range from
// weight_decay, dtype names as torch prints them, ...): `dump` is the parser's (name, value) list.
void show_megatron_derived_values(std::vector<std::pair<std::string, std::string>>& dump, const TrainArgs& a,
                                  int head_dim, int tp_size);

// The flags of the table that TrainArgs does not declare, and what they mean for a run.
struct MegatronCompat {
  // Sample-based training (Megatron's --train-samples, --lr-decay-samples, --lr-warmup-samples).
  std::optional<int64_t> train_samples, lr_decay_samples;
  int64_t lr_warmup_samples = 0;
  // Megatron's batch-size ramp-up (START INCREMENT SAMPLES, as its argparse keeps them: strings) and
  // --decrease-batch-size-if-needed (batches rounded down to a multiple of micro x data-parallel).
  std::vector<std::string> rampup_batch_size;
  bool decrease_batch_size_if_needed = false;
  // Old names and variants that change the computation.
  bool checkpoint_activations = false;
  int checkpoint_num_layers = 1;
  bool openai_gelu = false, bias_gelu_fusion = true;
  bool deepspeed = false;
  bool apply_query_key_layer_scaling = false;
  bool add_position_embedding = true, use_rotary_position_embeddings = false;
  std::string dataloader_type = "single";
  bool data_sharding = true;  // --no-data-sharding: the cyclic loader's unsharded order
  // Shape and precision of the residual stream (TransformerConfig / ModelConfig).
  bool apply_residual_connection_post_layernorm = false, fp32_residual_connection = false;
  // Extra figures of the iteration line (and TensorBoard's num-zeros / params-norm).
  bool log_num_zeros_in_grad = false, log_params_norm = false;
  // Implemented flags with nothing to do (Loom always does what they ask).
  bool attention_softmax_in_fp32 = false, deterministic_mode = false, log_throughput = false;
  bool resume_dataloader = false, no_save_rng = false;
  // The learning-rate schedule of a resumed run (optim/lr_schedule_resume.h): the command line's or the checkpoint's.
  bool override_lr_scheduler = false, use_checkpoint_lr_scheduler = false;

  void register_flags(ArgParser& p);
  // Refusals and translations onto TrainArgs, before TrainArgs::validate checks the values (UserError).
  void apply(TrainArgs& a, const ArgParser& p) const;
  // Once the global batch size is known: --train-samples sets the iterations (Megatron's update_train_iters,
  // through the ramp-up when there is one).
  void resolve_samples(TrainArgs& a) const;
  // "> flags with no effect on the CPU backend: --a, --b" for the ones given ("" when none).
  std::string no_effect_line(const ArgParser& p) const;
  // Megatron's unfused GELU is F.gelu (erf); its fused bias-GELU and --openai-gelu are the tanh form.
  bool exact_gelu() const { return !bias_gelu_fusion && !openai_gelu; }
  bool sample_based() const { return train_samples.has_value(); }
  bool cyclic_data() const { return dataloader_type == "cyclic"; }
  // The three numbers of --rampup-batch-size (checked by apply()), if given.
  std::optional<std::array<int64_t, 3>> rampup() const;

 private:
  // Storage of the NoEffect and Refused flags (the parser keeps pointers: lists do not move elements).
  std::list<bool> bools_;
  std::list<std::string> strings_;
  std::list<std::vector<std::string>> lists_;
};

}  // namespace loom
