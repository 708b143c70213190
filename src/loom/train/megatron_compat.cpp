#include "loom/train/megatron_compat.h"

#include <charconv>
#include <cstdlib>

#include "loom/core/error.h"
#include "loom/train/arguments.h"
#include "loom/train/batch_rampup.h"
#include "loom/util/cli.h"

namespace loom {

namespace {

std::optional<double> as_number(const std::string& s) {
  if (s == "True" || s == "False" || s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// Whether a value given on the command line is Megatron's default (numbers compare by value: 1e-05 = 0.00001).
bool same_value(const std::string& given, const std::string& megatron_default) {
  if (given == megatron_default) return true;
  const auto a = as_number(given), b = as_number(megatron_default);
  return a && b && *a == *b;
}

}  // namespace

const char* flag_class_name(FlagClass c) {
  switch (c) {
    case FlagClass::Implemented: return "implemented";
    case FlagClass::NoEffect: return "no effect on the CPU backend";
    case FlagClass::Refused: return "refused";
    case FlagClass::Derived: return "derived (not a flag)";
    case FlagClass::Tensorboard: return "implemented elsewhere / tensorboard";
    case FlagClass::PendingPipeline: return "pending the pipeline branch";
  }
  return "?";
}

void show_megatron_derived_values(std::vector<std::pair<std::string, std::string>>& dump, const TrainArgs& a,
                                  int head_dim, int tp_size) {
  std::map<std::string, std::string> v;
  for (auto& [name, value] : dump) v[name] = value;
  auto derive = [&](const std::string& name, const std::string& value) {
    for (auto& [n, shown] : dump)
      if (n == name) shown = value;
  };
  if (v["kv_channels"] == "None") derive("kv_channels", std::to_string(head_dim));
  derive("add_qkv_bias", a.disable_bias_linear && !a.add_qkv_bias ? "False" : "True");
  if (v["encoder_num_layers"] == "None") derive("encoder_num_layers", std::to_string(a.num_layers));
  if (v["start_weight_decay"] == "None") derive("start_weight_decay", v["weight_decay"]);
  if (v["end_weight_decay"] == "None") derive("end_weight_decay", v["weight_decay"]);
  if (v["moe_ffn_hidden_size"] == "None") derive("moe_ffn_hidden_size", v["ffn_hidden_size"]);
  if (v["expert_tensor_parallel_size"] == "None") derive("expert_tensor_parallel_size", std::to_string(tp_size));
  for (const char* d : {"exp_avg_dtype", "exp_avg_sq_dtype", "main_grads_dtype", "main_params_dtype"})
    if (v[d] == "fp32") derive(d, "torch.float32");
  // Megatron turns the NaN check off under dynamic loss scaling (its start-up warning says so).
  if (a.fp16 && !a.loss_scale) derive("check_for_nan_in_loss_and_grad", "False");
  if (a.recompute_granularity != "full") {  // the method and count only mean something for full recompute
    derive("recompute_method", "None");
    derive("recompute_num_layers", "None");
  }
}

void MegatronCompat::register_flags(ArgParser& p) {
  // Implemented here: new flags.
  p.add_opt_int("--train-samples", &train_samples, "train for this many samples (Megatron's sample-based training: "
                "iterations = samples // global batch; instead of --train-iters)");
  p.add_opt_int("--lr-decay-samples", &lr_decay_samples, "samples to decay the learning rate over (default --train-samples)");
  p.add_int("--lr-warmup-samples", &lr_warmup_samples, "samples of linear warmup (sample-based training)");
  p.add_strings("--rampup-batch-size", &rampup_batch_size,
                "START INCREMENT SAMPLES: Megatron's batch-size ramp-up from START to --global-batch-size in steps of "
                "INCREMENT over SAMPLES samples (sample-based training)");
  p.set_dest("--rampup-batch-size", "rampup_batch_size");
  p.add_flag("--decrease-batch-size-if-needed", &decrease_batch_size_if_needed,
             "round each global batch down to a multiple of micro-batch x data-parallel size (the rest is skipped)");
  p.add_flag("--checkpoint-activations", &checkpoint_activations,
             "old name of --recompute-granularity full --recompute-method uniform");
  p.add_int("--checkpoint-num-layers", &checkpoint_num_layers,
            "old name of --recompute-num-layers (every block is recomputed from its own input)");
  p.add_flag("--openai-gelu", &openai_gelu, "tanh GELU (Loom's GELU, and Megatron's fused bias-GELU)");
  p.add_no_flag("--no-bias-gelu-fusion", &bias_gelu_fusion,
                "Megatron's unfused GELU: exact (erf) GELU unless --openai-gelu");
  p.set_dest("--no-bias-gelu-fusion", "bias_gelu_fusion");
  p.add_flag("--apply-query-key-layer-scaling", &apply_query_key_layer_scaling,
             "scale attention scores by 1/layer number and back in an fp32 softmax: the same attention with "
             "Loom's fp32 scores");
  p.add_no_flag("--no-query-key-layer-scaling", &apply_query_key_layer_scaling, "Megatron 2021's spelling: no layer scaling");
  p.set_dest("--no-query-key-layer-scaling", "apply_query_key_layer_scaling");
  p.add_no_flag("--no-position-embedding", &add_position_embedding, "= --position-embedding-type none");
  p.set_dest("--no-position-embedding", "add_position_embedding");
  p.add_flag("--use-rotary-position-embeddings", &use_rotary_position_embeddings, "= --position-embedding-type rope");
  p.add_choice("--dataloader-type", &dataloader_type, {"single", "cyclic"},
               "single: Megatron's sequential sampler; cyclic: its random sampler, a new order every epoch "
               "(torch.randperm seeded by the epoch, reproduced exactly)");
  p.add_no_flag("--no-data-sharding", &data_sharding,
                "cyclic loader: one permutation of the whole dataset read rank-strided, instead of one per "
                "rank's bucket");
  p.set_dest("--no-data-sharding", "data_sharding");
  p.add_flag("--apply-residual-connection-post-layernorm", &apply_residual_connection_post_layernorm,
             "each block's residuals taken from its norms' outputs instead of their inputs");
  p.add_flag("--fp32-residual-connection", &fp32_residual_connection,
             "with --bf16/--fp16: the residual stream between and within blocks kept in fp32");
  p.add_flag("--log-num-zeros-in-grad", &log_num_zeros_in_grad,
             "the iteration line's 'num zeros': zero gradient elements of the iteration (every parameter once)");
  p.add_flag("--log-params-norm", &log_params_norm, "the iteration line's 'params norm': L2 norm of the weights after the update");
  p.add_flag("--deepspeed", &deepspeed, "DeepSpeed's switch: configure the run by --deepspeed_config");
  p.add_flag("--attention-softmax-in-fp32", &attention_softmax_in_fp32, "accepted: the softmax is always fp32 here");
  p.add_flag("--deterministic-mode", &deterministic_mode, "accepted: Loom is always deterministic");
  p.add_flag("--log-throughput", &log_throughput, "accepted: the iteration line always has the throughput");
  p.add_flag("--override-lr-scheduler", &override_lr_scheduler,
             "on --load: the schedule's values (lr, min lr, warmup, decay steps and style) from the command line, "
             "its step count from the checkpoint");
  p.add_alias("--override-opt_param-scheduler", "--override-lr-scheduler");
  p.add_flag("--use-checkpoint-lr-scheduler", &use_checkpoint_lr_scheduler,
             "on --load: the schedule's values and step count from the checkpoint, whatever the command line says");
  p.add_alias("--use-checkpoint-opt_param-scheduler", "--use-checkpoint-lr-scheduler");
  p.add_flag("--resume-dataloader", &resume_dataloader, "accepted: the data always resumes at the consumed samples");
  p.add_flag("--no-save-rng", &no_save_rng, "accepted: there is no RNG state to save (streams are functions of the seed)");
  // Implemented here: other spellings of TrainArgs' flags.
  p.add_alias("--batch-size", "--micro-batch-size");  // Megatron v1: the global batch is batch x data-parallel
  p.add_alias("--model-parallel-size", "--tensor-model-parallel-size");
  p.add_alias("--warmup", "--lr-warmup-fraction");
  p.add_alias("--train-data", "--data-path");
  p.add_alias("--deepspeed_config", "--deepspeed-config");
  p.add_alias("--encoder-seq-length", "--seq-length");
  p.add_alias("--num-virtual-stages-per-pipeline-rank", "--virtual-pipeline-model-parallel-size");

  // NoEffect and Refused: stored so that the argument block shows them, checked in apply().
  for (const MegatronFlag& f : megatron_flag_table()) {
    if (f.cls != FlagClass::NoEffect && f.cls != FlagClass::Refused) continue;
    const std::string help = f.cls == FlagClass::NoEffect ? std::string("no effect on the CPU backend (") + f.note + ")"
                                                          : std::string("refused: ") + f.note + " (not supported)";
    const std::string def = f.megatron_default;
    switch (f.kind) {
      case FlagKind::StoreTrue:
        bools_.push_back(false);
        p.add_flag(f.flag, &bools_.back(), help);
        break;
      case FlagKind::StoreFalse:
        bools_.push_back(true);
        p.add_no_flag(f.flag, &bools_.back(), help);
        break;
      case FlagKind::Value:
        strings_.push_back(def == "None" ? "" : def);
        p.add_string(f.flag, &strings_.back(), help);
        break;
      case FlagKind::Values: {
        lists_.emplace_back();
        if (def.size() > 2 && def.front() == '[') {  // e.g. ['p2p'] or [0]
          std::string item;
          for (char c : def.substr(1, def.size() - 2) + ",")
            if (c == ',') {
              if (!item.empty()) lists_.back().push_back(item);
              item.clear();
            } else if (c != '\'' && c != ' ') {
              item += c;
            }
        }
        p.add_strings(f.flag, &lists_.back(), help);
        break;
      }
    }
    p.set_dest(f.flag, f.dest);
    p.hide_from_help(f.flag);
  }
}

void MegatronCompat::apply(TrainArgs& a, const ArgParser& p) const {
  // Refused features: given at a value other than Megatron's default. Value flags are compared through the
  // argument dump, which shows what the parser stored (ArgParser::shown: one value, not the
  // whole sorted dump, which cost most of a parse).
  for (const MegatronFlag& f : megatron_flag_table()) {
    if (f.cls != FlagClass::Refused || !p.was_set(f.flag)) continue;
    bool at_default = false;
    if (f.kind == FlagKind::Value || f.kind == FlagKind::Values) {
      const std::string v = p.shown(f.dest).value_or("");
      const std::string def = f.megatron_default;
      at_default = same_value(v, def);
      if (!at_default && f.kind == FlagKind::Values && def.size() >= 2 && def.front() == '[') {
        std::string unquoted;  // ['0'] given for a default of [0]
        for (char c : v)
          if (c != '\'') unquoted += c;
        at_default = unquoted == def;
      }
    }
    const std::string def = f.megatron_default;
    if (!at_default)
      fail(std::string(f.flag) + ": " + f.note + " is not supported by Loom" +
           (f.kind == FlagKind::Value && def != "None" && !def.empty()
                ? " (accepted only at Megatron's default, " + def + ")"
                : ""));
  }
  // Megatron's OptimizerParamScheduler: assert not (override and use_checkpoint).
  require(!(override_lr_scheduler && use_checkpoint_lr_scheduler),
          "--override-lr-scheduler and --use-checkpoint-lr-scheduler: give only one (the command line's learning-rate "
          "schedule or the checkpoint's)");
  if (const auto shown_impl = p.shown("data_impl")) {
    const std::string impl = *shown_impl;
    require(impl == "mmap" || impl == "infer" || impl == "None",
            "--data-impl " + impl + ": Megatron's " + impl + " IndexedDataset format is not supported by Loom (it reads mmap)");
  }
  if (!rampup_batch_size.empty()) {
    require(rampup_batch_size.size() == 3,
            "--rampup-batch-size takes 3 values: <start batch size> <batch size increment> <ramp-up samples>");
    for (const std::string& v : rampup_batch_size) {
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      require(ec == std::errc() && end == v.data() + v.size(), "--rampup-batch-size: '" + v + "' is not an integer");
    }
  }
  if (deepspeed) require(!a.deepspeed_config.empty(), "--deepspeed needs --deepspeed_config FILE");
  if (checkpoint_activations && !p.was_set("--recompute-granularity")) {
    a.recompute_granularity = "full";
    if (!p.was_set("--recompute-method")) a.recompute_method = "uniform";
  }
  if (p.was_set("--checkpoint-num-layers") && !p.was_set("--recompute-num-layers")) a.recompute_num_layers = checkpoint_num_layers;
  if (!add_position_embedding) a.position_embedding_type = "none";
  if (use_rotary_position_embeddings) a.position_embedding_type = "rope";
  // Megatron's validate_args: iteration-based and sample-based training do not mix.
  if (train_samples) {
    require(!p.was_set("--train-iters"), "give only one of --train-iters and --train-samples");
    require(*train_samples > 0, "--train-samples must be positive");
    require(!p.was_set("--lr-decay-iters"), "--lr-decay-iters goes with --train-iters: use --lr-decay-samples");
    require(!p.was_set("--lr-warmup-iters"), "--lr-warmup-iters goes with --train-iters: use --lr-warmup-samples");
    require(!(p.was_set("--lr-warmup-fraction") && lr_warmup_samples > 0),
            "give only one of --lr-warmup-samples and --lr-warmup-fraction");
    require(!lr_decay_samples || *lr_decay_samples > 0, "--lr-decay-samples must be positive");
    require(lr_warmup_samples >= 0, "--lr-warmup-samples must not be negative");
  } else {
    // Megatron's validate_args: "expected no batch-size rampup for iteration-based training".
    require(rampup_batch_size.empty() || a.train_iters == 0,
            "--rampup-batch-size needs sample-based training: give --train-samples instead of --train-iters");
    require(!lr_decay_samples, "--lr-decay-samples goes with --train-samples: use --lr-decay-iters");
    require(lr_warmup_samples == 0, "--lr-warmup-samples goes with --train-samples: use --lr-warmup-iters");
  }
}

std::optional<std::array<int64_t, 3>> MegatronCompat::rampup() const {
  if (rampup_batch_size.size() != 3) return std::nullopt;
  std::array<int64_t, 3> v{};
  for (size_t i = 0; i < 3; i++) std::from_chars(rampup_batch_size[i].data(), rampup_batch_size[i].data() + rampup_batch_size[i].size(), v[i]);
  return v;
}

void MegatronCompat::resolve_samples(TrainArgs& a) const {
  if (!train_samples) return;
  // update_train_iters: with a constant batch the partial last batch is dropped; with a ramp-up the ramp's
  // iterations are counted one by one.
  a.train_iters = a.batch_rampup().train_iters(*train_samples);
  a.lr_decay_iters = a.train_iters;
}

std::string MegatronCompat::no_effect_line(const ArgParser& p) const {
  std::string given;
  for (const MegatronFlag& f : megatron_flag_table())
    if (f.cls == FlagClass::NoEffect && p.was_set(f.flag)) given += (given.empty() ? "" : ", ") + std::string(f.flag);
  return given.empty() ? "" : "> flags with no effect on the CPU backend: " + given;
}

}  // namespace loom
