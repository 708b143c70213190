#pragma once
// `loom train` arguments: Megatron's flag names and defaults, validated before anything is allocated.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loom/models/decoder_counts.h"
#include "loom/parallel/pipeline_schedule.h"
#include "loom/train/batch_rampup.h"
#include "loom/train/coca_optimizer_args.h"
#include "loom/train/deepspeed_lamb_args.h"
#include "loom/train/image_text_data_args.h"
#include "loom/train/tensorboard_args.h"
#include "loom/train/megatron_compat.h"
#include "loom/util/cli.h"

namespace loom {

struct TrainArgs {
  // model
  int num_layers = 0, hidden_size = 0, num_attention_heads = 0;
  std::optional<int64_t> ffn_hidden_size, max_position_embeddings;
  int seq_length = 0;
  int make_vocab_size_divisible_by = 128;
  std::optional<int64_t> vocab_size;  // --vocab-size: the tokenizer's size when no tokenizer file is read
  double hidden_dropout = 0.1, attention_dropout = 0.1, init_method_std = 0.02, layernorm_epsilon = 1e-5;
  bool init_method_xavier_uniform = false;
  // architecture (Megatron-Core's flags; --model and --model-preset expand to them)
  std::string model = "gpt", model_preset;
  std::string normalization = "LayerNorm", position_embedding_type = "learned_absolute";
  bool swiglu = false, group_query_attention = false, disable_bias_linear = false, add_qkv_bias = false;
  bool untie_embeddings_and_output_weights = false, use_rope_scaling = false, rotary_interleaved = false;
  int num_query_groups = 1;
  std::optional<int64_t> kv_channels;
  int64_t rotary_base = 10000;
  double rotary_percent = 1.0, rope_scaling_factor = 8.0;
  double rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  int64_t rope_original_max_position_embeddings = 8192;
  // batch and schedule
  int micro_batch_size = 1;
  std::optional<int64_t> global_batch_size;
  int64_t train_iters = 0;
  double lr = 0, min_lr = 0;
  std::string lr_decay_style = "linear";
  std::optional<int64_t> lr_decay_iters;
  int64_t lr_warmup_iters = 0;
  double lr_warmup_fraction = -1;  // unset
  double lr_warmup_init = 0;
  double weight_decay = 0.01, adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8, clip_grad = 1.0;
  double sgd_momentum = 0.9;  // --optimizer sgd
  int64_t seed = 1234;
  // logging and evaluation
  int log_interval = 100, eval_interval = 1000, eval_iters = 100;
  bool skip_train = false;
  // data
  std::vector<std::string> data_path;
  std::string split = "969, 30, 1";
  std::string vocab_file, merge_file, tokenizer_type = "GPT2BPETokenizer", tokenizer_model;
  std::string data_cache_path;
  bool eod_mask_loss = false, reset_position_ids = false, reset_attention_mask = false;
  // checkpoints and exit
  std::string save, load;
  int64_t save_interval = 0;
  bool no_save_optim = false, no_load_optim = false, no_load_rng = false, finetune = false, async_save = false;
  bool exit_signal_handler = false;
  int64_t exit_interval = 0;
  double exit_duration_in_mins = 0;
  // parallelism
  int tensor_model_parallel_size = 1, pipeline_model_parallel_size = 1, context_parallel_size = 1;
  bool sequence_parallel = false;
  std::optional<int64_t> num_layers_per_virtual_pipeline_stage, virtual_pipeline_model_parallel_size;
  std::string pipeline_schedule;  // empty: 1f1b, or interleaved with virtual stages
  bool use_dpp = false;           // --pipeline-schedule dynamic
  std::optional<int64_t> pipeline_max_in_flight;
  int decoder_first_pipeline_num_layers = 0, decoder_last_pipeline_num_layers = 0;
  std::string pipeline_trace;
  std::string pipeline_split = "even", pipeline_split_costs;
  bool profile_layers = false;
  // mixed precision
  bool fp16 = false, bf16 = false, accumulate_allreduce_grads_in_fp32 = false;
  std::optional<double> loss_scale;
  double initial_loss_scale = 4294967296.0, min_loss_scale = 1.0;
  int64_t loss_scale_window = 1000, hysteresis = 2;
  // activation recompute
  std::string recompute_granularity = "None", recompute_method = "uniform";
  int recompute_num_layers = 1;
  bool recompute_activations = false;
  std::string profile_layers_output;
  std::optional<int64_t> ddp_bucket_size;
  bool overlap_grad_reduce = false;
  int zero_stage = 0;
  std::string optimizer = "adam";
  bool use_distributed_optimizer = false;
  std::string deepspeed_config;        // DeepSpeed JSON: ZeRO, fp16/bf16, clipping, batch sizes
  std::string offload_optimizer = "none", offload_path;
  double memory_budget_gb = 1.0;  // resident optimizer state when offloading to nvme
  std::optional<int64_t> gradient_accumulation_steps;  // from the DeepSpeed config
  // runtime
  int threads = 0;  // 0: OMP_NUM_THREADS or all cores
  TensorBoardArgs tensorboard;  // --tensorboard-dir and friends, the DeepSpeed JSON's tensorboard section
  CocaOptimizerArgs coca_optimizer;  // EVA-CLIP's --visual-lr ... --ld (CoCa's parameter groups)
  DeepSpeedLambArgs deepspeed_lamb;  // the DeepSpeed config's Lamb: FusedLamb's arithmetic
  ImageTextDataArgs image_text;  // --dataset-type json/csv, its key flags, --workers
  // Megatron's and DeepSpeed's other flags: implemented, no effect here, or refused (megatron_compat.h)
  MegatronCompat compat;
  std::vector<std::string> config_warnings;  // e.g. DeepSpeed JSON keys Loom does not know (rank 0 prints them)

  void register_flags(ArgParser& p);
  // Parses argv with the flags of --model-preset and --model placed before the user's (see
  // expand_model_flags): returns false when --help was printed.
  static bool parse(ArgParser& p, int argc, char** argv);
  // Checks every constraint that needs no file access; throws UserError.
  void validate(const ArgParser& p, bool need_data = true);
  // Checks that need the world size (divisibility of the layout); throws UserError.
  void validate_layout(int world_size);
  ModelConfig model_config(int64_t vocab_size) const;
  int virtual_pipeline_size() const;
  PipelineSchedule schedule() const;
  // The GPT-2 vocabulary size, for commands that plan without reading the tokenizer files.
  static constexpr int64_t kGpt2Vocab = 50257;
  int data_parallel_size = 1;  // derived: world / (tp x pp x cp)
  // Megatron's micro-batch calculator for this run (constant or ramp-up); after validate_layout.
  BatchRampup batch_rampup() const;
  // Micro-batches per data-parallel rank and iteration at the full global batch (the most a ramp-up reaches;
  // rounded down under --decrease-batch-size-if-needed). Evaluation runs this many.
  int num_micro_batches() const { return int(*global_batch_size / (int64_t(micro_batch_size) * data_parallel_size)); }
};

}  // namespace loom
