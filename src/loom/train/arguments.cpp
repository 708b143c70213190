#include "loom/train/arguments.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/tokenizer.h"
#include "loom/models/family.h"
#include "loom/train/deepspeed_numbers.h"
#include "loom/util/cli.h"

namespace loom {

void TrainArgs::register_flags(ArgParser& p) {
  p.add_int("--num-layers", &num_layers, "number of transformer layers");
  p.add_int("--hidden-size", &hidden_size, "transformer hidden size");
  p.add_int("--num-attention-heads", &num_attention_heads, "number of attention heads");
  p.add_opt_int("--ffn-hidden-size", &ffn_hidden_size, "MLP inner size (default 4 x hidden)");
  p.add_int("--seq-length", &seq_length, "tokens per sample");
  p.add_opt_int("--max-position-embeddings", &max_position_embeddings, "position table size (default seq length)");
  p.add_int("--make-vocab-size-divisible-by", &make_vocab_size_divisible_by, "pad the vocabulary to a multiple of this");
  p.add_opt_int("--vocab-size", &vocab_size, "vocabulary size for loom plan (default 50257, GPT-2's; presets set theirs); "
                "loom train takes it from the tokenizer and checks it against this");
  p.add_float("--hidden-dropout", &hidden_dropout, "dropout on the residual branches and embeddings");
  p.add_float("--attention-dropout", &attention_dropout, "dropout on attention probabilities");
  p.add_float("--init-method-std", &init_method_std, "std of the normal initialisation");
  p.add_flag("--init-method-xavier-uniform", &init_method_xavier_uniform,
             "initialise the embeddings and linear weights with torch.nn.init.xavier_uniform_ instead of "
             "normal(0, --init-method-std)");
  p.add_float("--layernorm-epsilon", &layernorm_epsilon, "norm epsilon (older name of --norm-epsilon)");
  p.add_float("--norm-epsilon", &layernorm_epsilon, "LayerNorm / RMSNorm epsilon");
  p.add_choice("--model", &model, model_family_names(),
               "model family: gpt, or llama (= --normalization RMSNorm --swiglu --position-embedding-type rope "
               "--disable-bias-linear)");
  p.add_string("--model-preset", &model_preset, "a published model's shape: " + [] {
    std::string s;
    for (const auto& n : model_preset_names()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }() + " (explicit flags override it)");
  p.add_choice("--normalization", &normalization, {"LayerNorm", "RMSNorm"}, "norm of every block and the final norm");
  p.add_flag("--swiglu", &swiglu, "gated MLP: silu(x W_gate) * (x W_up) (fc1 holds both; Llama)");
  p.add_choice("--position-embedding-type", &position_embedding_type, {"learned_absolute", "rope", "none"},
               "learned position table, rotary embedding of queries and keys, or none");
  p.add_int("--rotary-base", &rotary_base, "RoPE base (theta)");
  p.add_float("--rotary-percent", &rotary_percent, "fraction of each head's channels that RoPE rotates");
  p.add_flag("--rotary-interleaved", &rotary_interleaved, "rotate channel pairs (2i, 2i+1) instead of (i, i + d/2)");
  p.add_flag("--use-rope-scaling", &use_rope_scaling, "Llama 3.1's RoPE frequency scaling");
  p.add_float("--rope-scaling-factor", &rope_scaling_factor, "llama3 scaling: factor");
  p.add_float("--rope-scaling-low-freq-factor", &rope_low_freq_factor, "llama3 scaling: low frequency factor");
  p.add_float("--rope-scaling-high-freq-factor", &rope_high_freq_factor, "llama3 scaling: high frequency factor");
  p.add_int("--rope-scaling-original-max-position-embeddings", &rope_original_max_position_embeddings,
            "llama3 scaling: the original context length");
  p.add_flag("--group-query-attention", &group_query_attention, "grouped-query attention (--num-query-groups)");
  p.add_int("--num-query-groups", &num_query_groups, "key/value groups with --group-query-attention");
  p.add_opt_int("--kv-channels", &kv_channels, "width of each attention head (default hidden / heads)");
  p.add_flag("--disable-bias-linear", &disable_bias_linear, "no biases in the linear layers");
  p.add_flag("--add-qkv-bias", &add_qkv_bias, "QKV bias even with --disable-bias-linear");
  p.add_flag("--untie-embeddings-and-output-weights", &untie_embeddings_and_output_weights,
             "the output layer has its own weight instead of the word embedding's");
  p.add_int("--micro-batch-size", &micro_batch_size, "samples per micro-batch");
  p.add_opt_int("--global-batch-size", &global_batch_size, "samples per iteration (default micro-batch size x data-parallel size, as Megatron)");
  p.add_int("--train-iters", &train_iters, "iterations to train");
  p.add_float("--lr", &lr, "peak learning rate");
  p.add_float("--min-lr", &min_lr, "learning rate at the end of decay");
  p.add_choice("--lr-decay-style", &lr_decay_style, {"constant", "linear", "cosine", "inverse-square-root"},
               "learning-rate decay");
  p.add_opt_int("--lr-decay-iters", &lr_decay_iters, "iterations to decay over (default train iters)");
  p.add_int("--lr-warmup-iters", &lr_warmup_iters, "iterations of linear warmup");
  p.add_float("--lr-warmup-fraction", &lr_warmup_fraction, "warmup as a fraction of the decay iterations");
  p.add_float("--lr-warmup-init", &lr_warmup_init, "learning rate at the start of warmup");
  p.add_float("--weight-decay", &weight_decay, "decoupled weight decay (not on biases and norms)");
  p.add_float("--adam-beta1", &adam_beta1, "Adam beta1");
  p.add_float("--adam-beta2", &adam_beta2, "Adam beta2");
  p.add_float("--adam-eps", &adam_eps, "Adam epsilon");
  p.add_float("--sgd-momentum", &sgd_momentum, "momentum factor of --optimizer sgd");
  p.add_float("--clip-grad", &clip_grad, "clip gradients to this global L2 norm (0: off)");
  p.add_int("--seed", &seed, "random seed (initialisation, dropout, data order)");
  p.add_int("--log-interval", &log_interval, "iterations between log lines");
  p.add_int("--eval-interval", &eval_interval, "iterations between validation runs");
  p.add_int("--eval-iters", &eval_iters, "iterations per validation run");
  p.add_flag("--skip-train", &skip_train, "only evaluate");
  p.add_strings("--data-path", &data_path, "dataset prefix(es), optionally weighted: [w1] p1 [w2 p2 ...]");
  p.add_string("--split", &split, "train, validation, test split of the documents");
  p.add_string("--vocab-file", &vocab_file, "GPT-2 vocab.json");
  p.add_string("--merge-file", &merge_file, "GPT-2 merges.txt");
  p.add_choice("--tokenizer-type", &tokenizer_type, data::tokenizer_types(), "tokenizer");
  p.add_string("--tokenizer-model", &tokenizer_model,
               "tokenizer file of HuggingFaceTokenizer (tokenizer.json), TikTokenizer or SentencePieceTokenizer");
  p.add_string("--data-cache-path", &data_cache_path, "where to cache sample index files (default next to the data)");
  p.add_flag("--eod-mask-loss", &eod_mask_loss, "no loss on end-of-document tokens");
  p.add_flag("--reset-position-ids", &reset_position_ids, "restart position ids after each end of document");
  p.add_flag("--reset-attention-mask", &reset_attention_mask, "no attention across document boundaries");
  p.add_string("--save", &save, "checkpoint directory to save to (at --save-interval and at the end)");
  p.add_int("--save-interval", &save_interval, "iterations between checkpoints (0: only at the end)");
  p.add_string("--load", &load, "checkpoint directory to resume from (or a .safetensors weights file to start from)");
  p.add_flag("--no-save-optim", &no_save_optim, "checkpoints without optimizer state");
  p.add_flag("--no-load-optim", &no_load_optim, "do not load optimizer state");
  p.add_flag("--no-load-rng", &no_load_rng, "accepted for Megatron compatibility: Loom's random streams are "
             "functions of (seed, iteration), so there is no RNG state to load");
  p.add_flag("--finetune", &finetune, "load weights only and start at iteration 0");
  p.add_flag("--async-save", &async_save, "write checkpoints from a background thread while training continues");
  p.add_flag("--exit-signal-handler", &exit_signal_handler,
             "on SIGTERM, SIGINT or SIGHUP: checkpoint at the end of the iteration and exit 0");
  p.add_int("--exit-interval", &exit_interval, "checkpoint and exit when the iteration is a multiple of this");
  p.add_float("--exit-duration-in-mins", &exit_duration_in_mins, "checkpoint and exit after this many minutes");
  p.add_int("--tensor-model-parallel-size", &tensor_model_parallel_size, "tensor-parallel ranks (Megatron TP)");
  p.add_int("--pipeline-model-parallel-size", &pipeline_model_parallel_size, "pipeline stages");
  p.add_opt_int("--num-layers-per-virtual-pipeline-stage", &num_layers_per_virtual_pipeline_stage,
                "layers per virtual stage (interleaved schedule)");
  p.add_opt_int("--virtual-pipeline-model-parallel-size", &virtual_pipeline_model_parallel_size,
                "model chunks per pipeline rank (interleaved schedule)");
  p.add_choice("--pipeline-schedule", &pipeline_schedule, {"gpipe", "1f1b", "interleaved", "dynamic", "zero-bubble"},
               "pipeline schedule (default 1f1b; interleaved with virtual stages; dynamic: run what has arrived; "
               "zero-bubble: ZB-H1, weight gradients deferred into the bubbles)");
  p.add_flag("--use-dpp", &use_dpp, "MegatronDPP's name for --pipeline-schedule dynamic");
  p.add_opt_int("--pipeline-max-in-flight", &pipeline_max_in_flight,
                "dynamic schedule: micro-batches in flight per stage (default: what 1F1B / interleaved hold)");
  p.add_int("--decoder-first-pipeline-num-layers", &decoder_first_pipeline_num_layers, "layers on the first stage (0: even)");
  p.add_int("--decoder-last-pipeline-num-layers", &decoder_last_pipeline_num_layers, "layers on the last stage (0: even)");
  p.add_string("--pipeline-trace", &pipeline_trace, "write a Chrome trace (JSON) of every pipeline pass and transfer");
  p.add_choice("--pipeline-split", &pipeline_split, {"even", "cost", "simple"},
               "blocks per stage: even; cost, balanced by per-layer cost (embedding and output layer included); "
               "simple, equal counts of modules per stage cut at block boundaries (the pipeline splitter's)");
  p.add_string("--pipeline-split-costs", &pipeline_split_costs,
               "per-layer costs for --pipeline-split cost: the JSON --profile-layers-output wrote (default: a FLOP model)");
  p.add_flag("--fp16", &fp16, "fp16 weights, gradients and activations (computed in fp32), fp32 main weights, loss scaling");
  p.add_flag("--bf16", &bf16, "bf16 weights, activations and GEMMs (fp32 accumulation), fp32 gradients and main weights");
  p.add_flag("--accumulate-allreduce-grads-in-fp32", &accumulate_allreduce_grads_in_fp32,
             "with --fp16: accumulate and store gradients in fp32 instead of fp16 (always the case with --bf16, as Megatron)");
  p.add_opt_float("--loss-scale", &loss_scale, "static loss scale (default: dynamic with --fp16)");
  p.add_float("--initial-loss-scale", &initial_loss_scale, "first dynamic loss scale");
  p.add_float("--min-loss-scale", &min_loss_scale, "floor of the dynamic loss scale");
  p.add_int("--loss-scale-window", &loss_scale_window, "clean iterations before the dynamic scale doubles");
  p.add_int("--hysteresis", &hysteresis, "overflows tolerated before the dynamic scale halves");
  p.add_choice("--recompute-granularity", &recompute_granularity, {"full", "selective"},
               "activation recompute: full re-runs each block's forward before its backward, selective only attention");
  p.add_choice("--recompute-method", &recompute_method, {"uniform", "block"},
               "full recompute of every block (uniform) or the first --recompute-num-layers blocks of each stage (block)");
  p.add_int("--recompute-num-layers", &recompute_num_layers, "blocks per stage to recompute with --recompute-method block");
  p.add_flag("--recompute-activations", &recompute_activations, "same as --recompute-granularity selective");
  p.add_flag("--profile-layers", &profile_layers, "print each stage's forward time per layer at every log interval");
  p.add_string("--profile-layers-output", &profile_layers_output,
               "with --profile-layers: write the measured per-layer forward costs (JSON) for --pipeline-split-costs");
  p.add_int("--context-parallel-size", &context_parallel_size, "context-parallel ranks (not yet: 1)");
  p.add_flag("--sequence-parallel", &sequence_parallel, "shard LayerNorm/dropout regions along the tokens (needs TP > 1)");
  p.add_opt_int("--ddp-bucket-size", &ddp_bucket_size, "data-parallel gradient bucket size in parameters "
                "(default max(40000000, 1000000 x data-parallel size))");
  p.add_flag("--overlap-grad-reduce", &overlap_grad_reduce, "reduce gradient buckets while the backward pass runs");
  p.add_int("--zero-stage", &zero_stage, "ZeRO: 1 shards the optimizer state over data-parallel ranks, 2 also "
            "the gradients (reduce-scattered layer by layer in the backward), 3 also the weights (all-gathered "
            "layer by layer before use)");
  p.add_choice("--optimizer", &optimizer, {"adam", "lamb", "sgd"},
               "adam (AdamW, apex FusedAdam), lamb (apex FusedLAMB) or sgd (torch.optim.SGD with --sgd-momentum "
               "and --weight-decay added to the gradient)");
  p.add_flag("--use-distributed-optimizer", &use_distributed_optimizer, "Megatron's name for --zero-stage 1");
  p.add_string("--deepspeed-config", &deepspeed_config,
               "DeepSpeed JSON (zero_optimization, fp16, bf16, optimizer, gradient_clipping, batch sizes); explicit flags win");
  p.add_choice("--offload-optimizer", &offload_optimizer, {"none", "cpu", "nvme"},
               "cpu: optimizer state in host memory (always the case on this CPU backend); nvme: moments (and "
               "fp32 main weights of a half-precision model) in files under --offload-path, streamed through the step");
  p.add_string("--offload-path", &offload_path, "directory for --offload-optimizer nvme");
  p.add_float("--memory-budget-gb", &memory_budget_gb,
              "with --offload-optimizer nvme: memory for the streamed optimizer blocks");
  p.add_int("--threads", &threads, "compute threads (default: OMP_NUM_THREADS or all cores)");
  tensorboard.register_flags(p);
  coca_optimizer.register_flags(p);
  image_text.register_flags(p);
  compat.register_flags(p);
}

bool TrainArgs::parse(ArgParser& p, int argc, char** argv) {
  std::vector<std::string> args = expand_model_flags(argc, argv);
  CocaOptimizerArgs::check_tower_flags(p, args);
  std::vector<char*> argp;
  for (auto& arg : args) argp.push_back(arg.data());
  return p.parse(int(argp.size()), argp.data());
}

namespace {

// The DeepSpeed keys Loom reads or knows to have no effect here (activation_checkpointing's placement
// options, the bucket and overlap settings of ZeRO's GPU implementation; the tensorboard section belongs to
// the TensorBoard writer). Any other key is warned about by name.
void unknown_deepspeed_keys(const nlohmann::json& j, const std::string& prefix, std::vector<std::string>& out) {
  static const std::map<std::string, std::vector<std::string>> known = {
      {"", {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping",
            "steps_per_print", "wall_clock_breakdown", "zero_optimization", "fp16", "bf16", "optimizer",
            "activation_checkpointing", "tensorboard"}},
      {"zero_optimization", {"stage", "reduce_bucket_size", "allgather_bucket_size", "offload_optimizer", "cpu_offload",
                             "contiguous_gradients", "overlap_comm", "reduce_scatter", "allgather_partitions",
                             "elastic_checkpoint", "load_from_fp32_weights"}},
      {"zero_optimization.offload_optimizer", {"device", "nvme_path", "pin_memory", "buffer_count", "fast_init"}},
      {"fp16", {"enabled", "loss_scale", "initial_scale_power", "loss_scale_window", "hysteresis", "min_loss_scale"}},
      {"bf16", {"enabled"}},
      {"optimizer", {"type", "params"}},
      {"optimizer.params", {"lr", "betas", "eps", "weight_decay", "bias_correction", "max_coeff", "min_coeff",
                            "eps_inside_sqrt", "max_grad_norm"}},
      {"activation_checkpointing", {"partition_activations", "contiguous_memory_optimization", "cpu_checkpointing",
                                    "number_checkpoints", "synchronize_checkpoint_boundary", "profile"}},
      {"tensorboard", {"enabled", "output_path", "job_name"}},
  };
  const auto section = known.find(prefix);
  if (section == known.end() || !j.is_object()) return;
  for (const auto& [key, value] : j.items()) {
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    if (std::find(section->second.begin(), section->second.end(), key) == section->second.end())
      out.push_back(name);
    else
      unknown_deepspeed_keys(value, name, out);
  }
}

// DeepSpeed's JSON, mapped onto Megatron flags the user did not give explicitly.
void apply_deepspeed_config(TrainArgs& a, const ArgParser& p) {
  std::ifstream f(a.deepspeed_config);
  require(bool(f), "cannot open --deepspeed-config " + a.deepspeed_config);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail(a.deepspeed_config + ": malformed JSON: " + e.what());
  }
  check_deepspeed_numbers(j, a.deepspeed_config);
  auto where = [&](const std::string& key) { return a.deepspeed_config + ": " + key; };
  std::vector<std::string> unknown;
  unknown_deepspeed_keys(j, "", unknown);
  for (const auto& key : unknown)
    a.config_warnings.push_back(where("unknown key '" + key + "' (Loom does not know it; it has no effect)"));
  try {
    if (j.contains("train_micro_batch_size_per_gpu") && !p.was_set("--micro-batch-size"))
      a.micro_batch_size = j["train_micro_batch_size_per_gpu"].get<int>();
    if (j.contains("train_batch_size") && !p.was_set("--global-batch-size"))
      a.global_batch_size = j["train_batch_size"].get<int64_t>();
    if (j.contains("gradient_accumulation_steps")) a.gradient_accumulation_steps = j["gradient_accumulation_steps"].get<int64_t>();
    if (j.contains("gradient_clipping") && !p.was_set("--clip-grad")) a.clip_grad = j["gradient_clipping"].get<double>();
    if (j.contains("zero_optimization")) {
      const auto& z = j["zero_optimization"];
      if (z.contains("stage") && !p.was_set("--zero-stage")) a.zero_stage = z["stage"].get<int>();
      if (z.contains("reduce_bucket_size") && !p.was_set("--ddp-bucket-size"))
        a.ddp_bucket_size = int64_t(z["reduce_bucket_size"].get<double>());
      // DeepSpeed 0.3's spelling of offload_optimizer.device cpu.
      if (z.value("cpu_offload", false) && !p.was_set("--offload-optimizer")) a.offload_optimizer = "cpu";
      if (z.contains("offload_optimizer")) {
        const std::string device = z["offload_optimizer"].value("device", "none");
        require(device == "none" || device == "cpu" || device == "nvme",
                where("zero_optimization.offload_optimizer.device") + " '" + device + "' is not one of none, cpu, nvme");
        if (!p.was_set("--offload-optimizer")) a.offload_optimizer = device;
        if (z["offload_optimizer"].contains("nvme_path") && !p.was_set("--offload-path"))
          a.offload_path = z["offload_optimizer"]["nvme_path"].get<std::string>();
      }
    }
    if (j.contains("fp16") && j["fp16"].value("enabled", false)) {
      const auto& h = j["fp16"];
      a.fp16 = true;
      const double ls = h.value("loss_scale", 0.0);  // DeepSpeed: 0 means dynamic
      if (ls > 0 && !p.was_set("--loss-scale")) a.loss_scale = ls;
      if (h.contains("initial_scale_power") && !p.was_set("--initial-loss-scale"))
        a.initial_loss_scale = std::ldexp(1.0, h["initial_scale_power"].get<int>());
      if (h.contains("loss_scale_window") && !p.was_set("--loss-scale-window"))
        a.loss_scale_window = h["loss_scale_window"].get<int64_t>();
      if (h.contains("hysteresis") && !p.was_set("--hysteresis")) a.hysteresis = h["hysteresis"].get<int64_t>();
      if (h.contains("min_loss_scale") && !p.was_set("--min-loss-scale"))
        a.min_loss_scale = h["min_loss_scale"].get<double>();
    }
    if (j.contains("bf16") && j["bf16"].value("enabled", false)) a.bf16 = true;
    if (j.contains("tensorboard")) a.tensorboard.apply_deepspeed(j["tensorboard"], where("tensorboard"));
    if (j.contains("optimizer") && !p.was_set("--optimizer")) {
      const auto& o = j["optimizer"];
      std::string type = o.value("type", "AdamW");
      for (auto& ch : type) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      require(type == "adam" || type == "adamw" || type == "lamb",
              where("optimizer.type") + " '" + o.value("type", "") + "' is not one of Adam, AdamW, Lamb");
      a.optimizer = type == "lamb" ? "lamb" : "adam";
      if (type == "lamb") a.deepspeed_lamb.apply_deepspeed(o, where("optimizer"));
      if (o.contains("params")) {
        const auto& q = o["params"];
        if (q.contains("lr") && !p.was_set("--lr")) a.lr = q["lr"].get<double>();
        if (q.contains("weight_decay") && !p.was_set("--weight-decay")) a.weight_decay = q["weight_decay"].get<double>();
        if (q.contains("eps") && !p.was_set("--adam-eps")) a.adam_eps = q["eps"].get<double>();
        if (q.contains("betas")) {
          if (!p.was_set("--adam-beta1")) a.adam_beta1 = q["betas"].at(0).get<double>();
          if (!p.was_set("--adam-beta2")) a.adam_beta2 = q["betas"].at(1).get<double>();
        }
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail(a.deepspeed_config + ": unexpected value: " + e.what());
  }
}

}  // namespace

void TrainArgs::validate(const ArgParser& p, bool need_data) {
  compat.apply(*this, p);
  coca_optimizer.validate();
  // GPT and Llama read Megatron's indexed datasets; an image-caption index trains CoCa.
  require(!image_text.image_text(), "--dataset-type " + image_text.dataset_type +
                                        " is an image-caption index: it trains --model coca (GPT and Llama read "
                                        "'loom preprocess' datasets, --dataset-type indexed)");
  if (!deepspeed_config.empty()) apply_deepspeed_config(*this, p);
  // Megatron's validate_args: 'residual connection in fp32 only supported when using fp16 or bf16'.
  require(!compat.fp32_residual_connection || fp16 || bf16,
          "--fp32-residual-connection keeps the residual stream in fp32 while training in half precision: it "
          "needs --fp16 or --bf16");
  // With post-norm residuals Megatron's residual is the norms' half-precision output, so only its embedding
  // output would stay in fp32: that partial form is not Loom's.
  require(!compat.fp32_residual_connection || !compat.apply_residual_connection_post_layernorm,
          "--fp32-residual-connection with --apply-residual-connection-post-layernorm is not supported by Loom (the "
          "residuals are then the norms' half-precision outputs)");
  require(num_layers > 0, "--num-layers must be given and positive");
  require(hidden_size > 0, "--hidden-size must be given and positive");
  require(num_attention_heads > 0, "--num-attention-heads must be given and positive");
  require(kv_channels || hidden_size % num_attention_heads == 0,
          "--hidden-size (" + std::to_string(hidden_size) + ") must be divisible by --num-attention-heads (" +
              std::to_string(num_attention_heads) + ")");
  require(!kv_channels || *kv_channels > 0, "--kv-channels must be positive");
  if (group_query_attention) {
    // Before the groups are divided by it.
    require(tensor_model_parallel_size > 0, "--tensor-model-parallel-size must be positive");
    require(num_query_groups > 0 && num_attention_heads % num_query_groups == 0,
            "--num-query-groups (" + std::to_string(num_query_groups) + ") must divide --num-attention-heads (" +
                std::to_string(num_attention_heads) + ")");
    require(num_query_groups % tensor_model_parallel_size == 0,
            "--num-query-groups (" + std::to_string(num_query_groups) +
                ") must be divisible by --tensor-model-parallel-size (" + std::to_string(tensor_model_parallel_size) + ")");
  }
  require(!use_rope_scaling || position_embedding_type == "rope",
          "--use-rope-scaling needs --position-embedding-type rope");
  require(rotary_base > 0, "--rotary-base must be positive");
  require(rotary_percent > 0 && rotary_percent <= 1, "--rotary-percent must be within (0, 1]");
  require(!use_rope_scaling || (rope_scaling_factor >= 1 && rope_high_freq_factor > rope_low_freq_factor &&
                                rope_original_max_position_embeddings > 0),
          "llama3 RoPE scaling needs factor >= 1, high frequency factor > low, and a positive original context");
  require(seq_length > 0, "--seq-length must be given and positive");
  if (!max_position_embeddings) max_position_embeddings = seq_length;
  require(*max_position_embeddings >= seq_length,
          "--seq-length (" + std::to_string(seq_length) + ") exceeds --max-position-embeddings (" +
              std::to_string(*max_position_embeddings) + ")");
  if (!ffn_hidden_size) ffn_hidden_size = 4 * int64_t(hidden_size);
  require(*ffn_hidden_size > 0, "--ffn-hidden-size must be positive");
  require(make_vocab_size_divisible_by > 0, "--make-vocab-size-divisible-by must be positive");
  require(!vocab_size || *vocab_size > 0, "--vocab-size must be positive");
  require(micro_batch_size > 0, "--micro-batch-size must be positive");
  if (global_batch_size) require(*global_batch_size > 0, "--global-batch-size must be positive");
  // A ramp-up checks the batches it reaches (Megatron's consistency check); rounding needs no divisibility.
  if (global_batch_size && !compat.decrease_batch_size_if_needed && compat.rampup_batch_size.empty())
    require(*global_batch_size % micro_batch_size == 0,
            "--global-batch-size (" + std::to_string(*global_batch_size) + ") must be a multiple of --micro-batch-size (" +
                std::to_string(micro_batch_size) + ")");
  require(train_iters >= 0, "--train-iters must not be negative");
  require(lr >= 0 && min_lr >= 0, "--lr and --min-lr must not be negative");
  require(min_lr <= lr || lr_decay_style == "constant", "--min-lr must not exceed --lr");
  if (!lr_decay_iters) lr_decay_iters = train_iters;
  require(lr_warmup_iters >= 0, "--lr-warmup-iters must not be negative");
  require(!(p.was_set("--lr-warmup-fraction") && lr_warmup_iters > 0),
          "give only one of --lr-warmup-iters and --lr-warmup-fraction");
  require(!p.was_set("--lr-warmup-fraction") || (lr_warmup_fraction >= 0 && lr_warmup_fraction <= 1),
          "--lr-warmup-fraction must be within [0, 1]");
  require(lr_decay_style == "constant" || *lr_decay_iters == 0 || lr_warmup_iters < *lr_decay_iters,
          "--lr-warmup-iters must be smaller than --lr-decay-iters");
  require(hidden_dropout >= 0 && hidden_dropout < 1, "--hidden-dropout must be within [0, 1)");
  require(attention_dropout >= 0 && attention_dropout < 1, "--attention-dropout must be within [0, 1)");
  require(adam_beta1 >= 0 && adam_beta1 < 1 && adam_beta2 >= 0 && adam_beta2 < 1, "Adam betas must be within [0, 1)");
  require(adam_eps > 0, "--adam-eps must be positive");
  require(clip_grad >= 0, "--clip-grad must not be negative");
  require(log_interval > 0, "--log-interval must be positive");
  require(eval_interval > 0, "--eval-interval must be positive");
  require(eval_iters >= 0, "--eval-iters must not be negative");
  require(save_interval >= 0, "--save-interval must not be negative");
  require(exit_interval >= 0, "--exit-interval must not be negative");
  require(exit_duration_in_mins >= 0, "--exit-duration-in-mins must not be negative");
  require(!async_save || !save.empty(), "--async-save needs --save");
  require(threads >= 0, "--threads must not be negative");
  require(tensor_model_parallel_size > 0, "--tensor-model-parallel-size must be positive");
  require(pipeline_model_parallel_size > 0, "--pipeline-model-parallel-size must be positive");
  require(!(num_layers_per_virtual_pipeline_stage && virtual_pipeline_model_parallel_size),
          "give only one of --num-layers-per-virtual-pipeline-stage and --virtual-pipeline-model-parallel-size");
  if (num_layers_per_virtual_pipeline_stage) {
    require(*num_layers_per_virtual_pipeline_stage > 0 &&
                num_layers % (*num_layers_per_virtual_pipeline_stage * pipeline_model_parallel_size) == 0,
            "--num-layers must be divisible by --num-layers-per-virtual-pipeline-stage x --pipeline-model-parallel-size");
    virtual_pipeline_model_parallel_size =
        num_layers / pipeline_model_parallel_size / *num_layers_per_virtual_pipeline_stage;
  }
  if (virtual_pipeline_model_parallel_size && *virtual_pipeline_model_parallel_size > 1)
    require(pipeline_model_parallel_size > 1, "virtual pipeline stages need --pipeline-model-parallel-size > 1");
  require(!use_dpp || pipeline_schedule.empty() || pipeline_schedule == "dynamic",
          "--use-dpp is --pipeline-schedule dynamic, not " + pipeline_schedule);
  if (use_dpp) pipeline_schedule = "dynamic";
  require(pipeline_schedule != "dynamic" || pipeline_model_parallel_size > 1,
          "--pipeline-schedule dynamic needs --pipeline-model-parallel-size > 1");
  require(!pipeline_max_in_flight || *pipeline_max_in_flight > 0, "--pipeline-max-in-flight must be positive");
  require(!pipeline_max_in_flight || pipeline_schedule == "dynamic", "--pipeline-max-in-flight needs --pipeline-schedule dynamic");
  if (pipeline_schedule.empty()) pipeline_schedule = virtual_pipeline_size() > 1 ? "interleaved" : "1f1b";
  require(pipeline_schedule != "interleaved" || virtual_pipeline_size() > 1,
          "--pipeline-schedule interleaved needs virtual stages (--num-layers-per-virtual-pipeline-stage)");
  require(pipeline_schedule == "interleaved" || pipeline_schedule == "dynamic" || virtual_pipeline_size() == 1,
          "virtual pipeline stages run only with the interleaved or dynamic schedule");
  require(decoder_first_pipeline_num_layers >= 0 && decoder_last_pipeline_num_layers >= 0,
          "--decoder-first/last-pipeline-num-layers must not be negative");
  require(pipeline_split == "even" || (!decoder_first_pipeline_num_layers && !decoder_last_pipeline_num_layers),
          "--pipeline-split cost/simple cannot be combined with explicit first/last stage layers");
  require(pipeline_split_costs.empty() || pipeline_split == "cost", "--pipeline-split-costs needs --pipeline-split cost");
  require(profile_layers_output.empty() || profile_layers, "--profile-layers-output needs --profile-layers");
  if (recompute_activations) recompute_granularity = "selective";
  require(recompute_num_layers >= 1, "--recompute-num-layers must be at least 1");
  require(!(fp16 && bf16), "give only one of --fp16 and --bf16");
  require(!loss_scale || *loss_scale > 0, "--loss-scale must be positive");
  require(initial_loss_scale > 0 && min_loss_scale > 0 && min_loss_scale <= initial_loss_scale,
          "need 0 < --min-loss-scale <= --initial-loss-scale");
  require(loss_scale_window > 0 && hysteresis > 0, "--loss-scale-window and --hysteresis must be positive");
  if (use_distributed_optimizer && zero_stage == 0) zero_stage = 1;
  require(zero_stage >= 0 && zero_stage <= 3, "--zero-stage must be 0, 1, 2 or 3");
  if (pipeline_schedule == "zero-bubble") {  // what its deferred weight gradients keep per micro-batch
    const std::string zb = "--pipeline-schedule zero-bubble ";
    require(pipeline_model_parallel_size > 1, zb + "needs --pipeline-model-parallel-size > 1");
    require(recompute_granularity.empty() || recompute_granularity == "None",
            zb + "cannot be combined with activation recompute");
    require(zero_stage < 2, zb + "cannot be combined with ZeRO-2/3 (--zero-stage " + std::to_string(zero_stage) + ")");
  }
  require(offload_optimizer != "nvme" || !offload_path.empty(), "--offload-optimizer nvme needs --offload-path");
  require(offload_optimizer != "nvme" || optimizer != "sgd",
          "--offload-optimizer nvme streams Adam's and LAMB's moments: it does not take --optimizer sgd");
  require(sgd_momentum >= 0, "--sgd-momentum must be >= 0 (got " + python_float(sgd_momentum) + ")");
  require(memory_budget_gb > 0, "--memory-budget-gb must be positive");
  require(context_parallel_size == 1, "--context-parallel-size > 1 is not supported yet");
  const int T = tensor_model_parallel_size;
  require(num_attention_heads % T == 0, "--num-attention-heads (" + std::to_string(num_attention_heads) +
                                            ") must be divisible by --tensor-model-parallel-size (" + std::to_string(T) + ")");
  require(*ffn_hidden_size % T == 0, "--ffn-hidden-size (" + std::to_string(*ffn_hidden_size) +
                                         ") must be divisible by --tensor-model-parallel-size (" + std::to_string(T) + ")");
  if (sequence_parallel && T == 1) sequence_parallel = false;  // Megatron turns it off with a warning
  require(!sequence_parallel || seq_length % T == 0,
          "--sequence-parallel needs --seq-length (" + std::to_string(seq_length) +
              ") divisible by --tensor-model-parallel-size (" + std::to_string(T) + ")");
  require(!ddp_bucket_size || *ddp_bucket_size > 0, "--ddp-bucket-size must be positive");
  if (!need_data) return;
  require(!data_path.empty(), "--data-path is required (a prefix written by 'loom preprocess')");
  if (tokenizer_type == "GPT2BPETokenizer")
    require(!vocab_file.empty() && !merge_file.empty(), "--vocab-file and --merge-file are required");
  else
    require(!tokenizer_model.empty(), "--tokenizer-type " + tokenizer_type + " needs --tokenizer-model FILE");
}

void TrainArgs::validate_layout(int world_size) {
  const int model = tensor_model_parallel_size * pipeline_model_parallel_size * context_parallel_size;
  require(world_size % model == 0, "world size (" + std::to_string(world_size) +
                                       ") is not divisible by tensor x pipeline x context parallel size (" +
                                       std::to_string(model) + ")");
  data_parallel_size = world_size / model;
  if (gradient_accumulation_steps) {  // DeepSpeed: train_batch_size = micro x accumulation x data-parallel
    const int64_t implied = int64_t(micro_batch_size) * *gradient_accumulation_steps * data_parallel_size;
    if (!global_batch_size) global_batch_size = implied;
    require(*global_batch_size == implied,
            "the DeepSpeed config's train_batch_size (" + std::to_string(*global_batch_size) +
                ") is not train_micro_batch_size_per_gpu x gradient_accumulation_steps x data-parallel size (" +
                std::to_string(implied) + ")");
  }
  // Megatron's default: one micro-batch per data-parallel rank (no accumulation).
  if (!global_batch_size) global_batch_size = int64_t(micro_batch_size) * data_parallel_size;
  const int64_t per_step = int64_t(micro_batch_size) * data_parallel_size;
  if (!compat.decrease_batch_size_if_needed && !compat.rampup())
    require(*global_batch_size % per_step == 0,
            "--global-batch-size (" + std::to_string(*global_batch_size) + ") must be a multiple of --micro-batch-size x " +
                "data-parallel size (" + std::to_string(micro_batch_size) + " x " + std::to_string(data_parallel_size) +
                ")");
  require(!compat.rampup() || !gradient_accumulation_steps,
          "--rampup-batch-size: the DeepSpeed config fixes gradient_accumulation_steps; drop one of them");
  const BatchRampup ramp = batch_rampup();  // the calculator's own checks (UserError)
  require(*global_batch_size >= per_step, "--global-batch-size (" + std::to_string(*global_batch_size) +
                                              ") is below --micro-batch-size x data-parallel size (" +
                                              std::to_string(per_step) + "): evaluation needs one micro-batch");
  compat.resolve_samples(*this);
  if (!ddp_bucket_size) ddp_bucket_size = std::max<int64_t>(40000000, 1000000 * int64_t(data_parallel_size));
  // Every batch the run will reach must be runnable: Megatron asserts it iteration by iteration.
  const bool interleaved =
      pipeline_schedule == "interleaved" || (pipeline_schedule == "dynamic" && virtual_pipeline_size() > 1);
  const int P = pipeline_model_parallel_size;
  if (interleaved) {
    const int64_t M = num_micro_batches();
    require(M >= P && M % P == 0, "the interleaved schedule needs the number of micro-batches (" + std::to_string(M) +
                                      ") to be a multiple of --pipeline-model-parallel-size (" + std::to_string(P) + ")");
  }
  ramp.check_run(train_iters, interleaved ? P : 1,
                 "the interleaved schedule needs the number of micro-batches to be a multiple of "
                 "--pipeline-model-parallel-size");
}

BatchRampup TrainArgs::batch_rampup() const {
  BatchRampup::Options o;
  o.global_batch = *global_batch_size;
  o.micro_batch = micro_batch_size;
  o.data_parallel = data_parallel_size;
  o.decrease_if_needed = compat.decrease_batch_size_if_needed;
  o.rampup = compat.rampup();
  return BatchRampup(o);
}

int TrainArgs::virtual_pipeline_size() const {
  return virtual_pipeline_model_parallel_size ? int(*virtual_pipeline_model_parallel_size) : 1;
}

PipelineSchedule TrainArgs::schedule() const { return parse_pipeline_schedule(pipeline_schedule.empty() ? "1f1b" : pipeline_schedule); }

ModelConfig TrainArgs::model_config(int64_t vocab_size) const {
  ModelConfig c;
  c.num_layers = num_layers;
  c.hidden_size = hidden_size;
  c.num_attention_heads = num_attention_heads;
  c.ffn_hidden_size = int(*ffn_hidden_size);
  c.seq_length = seq_length;
  c.max_position_embeddings = int(*max_position_embeddings);
  c.vocab_size = int(vocab_size);
  c.padded_vocab_size = int(padded_vocab(vocab_size, make_vocab_size_divisible_by, tensor_model_parallel_size));
  c.hidden_dropout = float(hidden_dropout);
  c.attention_dropout = float(attention_dropout);
  c.init_method_std = float(init_method_std);
  c.init_method_xavier_uniform = init_method_xavier_uniform;
  c.layernorm_epsilon = float(layernorm_epsilon);
  c.normalization = normalization == "RMSNorm" ? NormKind::RMSNorm : NormKind::LayerNorm;
  c.activation = swiglu ? ActivationKind::SwiGlu : compat.exact_gelu() ? ActivationKind::GeluExact : ActivationKind::Gelu;
  c.position_embedding = position_embedding_type == "rope"   ? PositionKind::Rope
                         : position_embedding_type == "none" ? PositionKind::None
                                                             : PositionKind::Learned;
  c.rope.base = double(rotary_base);
  c.rope.percent = rotary_percent;
  c.rope.interleaved = rotary_interleaved;
  c.rope.llama3_scaling = use_rope_scaling;
  c.rope.scaling_factor = rope_scaling_factor;
  c.rope.low_freq_factor = rope_low_freq_factor;
  c.rope.high_freq_factor = rope_high_freq_factor;
  c.rope.original_max_position = int(rope_original_max_position_embeddings);
  c.num_query_groups = group_query_attention ? num_query_groups : 0;
  c.kv_channels = kv_channels ? int(*kv_channels) : 0;
  c.add_bias_linear = !disable_bias_linear;
  c.add_qkv_bias = !disable_bias_linear || add_qkv_bias;
  c.tie_embeddings = !untie_embeddings_and_output_weights;
  c.recompute_granularity = recompute_granularity == "None" ? "" : recompute_granularity;
  c.recompute_method = recompute_method;
  c.recompute_num_layers = recompute_num_layers;
  c.activation_dtype = fp16 ? DType::F16 : bf16 ? DType::BF16 : DType::F32;
  c.apply_residual_connection_post_layernorm = compat.apply_residual_connection_post_layernorm;
  c.fp32_residual = compat.fp32_residual_connection;
  return c;
}

}  // namespace loom
