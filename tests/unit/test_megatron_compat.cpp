// Every flag of the reference runs is in one class (megatron_compat.h). The names come from the runs' own
// argument blocks, copied from reference logs 002 and 004 into tests/data/megatron_seeds/, and from log 001's
// command line; each refused flag is tried and must give its one line, each no-effect flag must be listed.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "loom/core/error.h"
#include "loom/train/arguments.h"
#include "loom/train/megatron_compat.h"
#include "loom/util/cli.h"

using namespace loom;

namespace {

const std::string kSeeds = std::string(LOOM_SOURCE_DIR) + "/tests/data/megatron_seeds/";

// The names of a Megatron argument block: "  name ....... value" (2021/2025) or "  name ... value" (v1).
std::vector<std::string> dump_names(const std::string& file) {
  std::ifstream f(kSeeds + file);
  EXPECT_TRUE(bool(f)) << file;
  std::vector<std::string> names;
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("  ", 0) != 0) continue;
    std::istringstream s(line);
    std::string name;
    s >> name;
    names.push_back(name);
  }
  return names;
}

std::vector<std::string> command_flags(const std::string& file) {
  std::ifstream f(kSeeds + file);
  std::string word;
  std::vector<std::string> flags;
  bool script_seen = false;  // the launcher's own flags come before the script
  while (f >> word) {
    if (word.find(".py") != std::string::npos) script_seen = true;
    if (script_seen && word.rfind("--", 0) == 0) flags.push_back(word);
  }
  return flags;
}

std::map<std::string, std::set<FlagClass>> classes_by_dest() {
  std::map<std::string, std::set<FlagClass>> m;
  for (const MegatronFlag& f : megatron_flag_table()) m[f.dest].insert(f.cls);
  return m;
}

struct Parsed {
  TrainArgs a;
  ArgParser p{"loom train", "test"};
};

// Parses and validates (no data needed) `extra` after a small model's flags; rethrows UserError.
std::unique_ptr<Parsed> parse(std::vector<std::string> extra) {
  auto r = std::make_unique<Parsed>();
  r->a.register_flags(r->p);
  std::vector<std::string> args = {"--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4",
                                   "--seq-length", "32"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  TrainArgs::parse(r->p, int(argv.size()), argv.data());
  r->a.validate(r->p, /*need_data=*/false);
  return r;
}

std::string error_of(std::vector<std::string> extra) {
  try {
    parse(std::move(extra));
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(MegatronCompat, EveryNameOfTheSeedDumpsHasExactlyOneClass) {
  const auto classes = classes_by_dest();
  size_t checked = 0;
  for (const char* file : {"002.arguments", "004.arguments"}) {
    const auto names = dump_names(file);
    EXPECT_GT(names.size(), 100u) << file;
    for (const auto& name : names) {
      ASSERT_TRUE(classes.count(name)) << name << " (" << file << ") is in no class";
      EXPECT_EQ(classes.at(name).size(), 1u) << name << " is in more than one class";
      checked++;
    }
  }
  EXPECT_EQ(checked, 139u + 465u);  // the analyses' counts
  const auto flags = command_flags("001.command");
  EXPECT_EQ(flags.size(), 27u);
  for (const auto& flag : flags) {
    bool found = false;
    for (const MegatronFlag& f : megatron_flag_table()) found |= flag == f.flag;
    EXPECT_TRUE(found) << flag << " of log 001's command line is in no class";
  }
}

TEST(MegatronCompat, EveryAcceptedFlagIsDeclared) {
  TrainArgs a;
  ArgParser p("loom train", "test");
  a.register_flags(p);
  for (const MegatronFlag& f : megatron_flag_table()) {
    const std::string flag = f.flag;
    if (f.cls == FlagClass::Derived) {
      EXPECT_TRUE(flag.empty()) << f.dest;
      continue;
    }
    // MegatronDPP's flags are declared by the branch that implements them.
    if (f.cls == FlagClass::PendingPipeline) continue;
    EXPECT_TRUE(p.has(flag)) << flag << " (" << flag_class_name(f.cls) << ") is not a flag of loom train";
  }
}

TEST(MegatronCompat, EachRefusedFlagGivesOneLineNamingTheFeature) {
  int refused = 0;
  for (const MegatronFlag& f : megatron_flag_table()) {
    if (f.cls != FlagClass::Refused) continue;
    std::vector<std::string> extra = {f.flag};
    if (f.kind == FlagKind::Value || f.kind == FlagKind::Values) extra.push_back("7777");
    const std::string err = error_of(extra);
    EXPECT_EQ(err.rfind(std::string(f.flag) + ": " + f.note + " is not supported by Loom", 0), 0u)
        << f.flag << " gave '" << err << "'";
    EXPECT_EQ(err.find('\n'), std::string::npos);
    refused++;
  }
  EXPECT_GT(refused, 200);
}

TEST(MegatronCompat, RefusedFlagsAtMegatronsDefaultLeaveTheFeatureOffAndAreAccepted) {
  int accepted = 0;
  for (const MegatronFlag& f : megatron_flag_table()) {
    const std::string def = f.megatron_default;
    if (f.cls != FlagClass::Refused || f.kind != FlagKind::Value || def == "None" || def.empty()) continue;
    EXPECT_EQ(error_of({f.flag, def}), "") << f.flag << " " << def;
    accepted++;
  }
  EXPECT_GT(accepted, 50);
  EXPECT_EQ(error_of({"--moe-router-topk", "2", "--hidden-dropout", "0.1"}), "");
  EXPECT_EQ(error_of({"--moe-router-topk", "2.0"}), "");  // numbers compare by value
}

TEST(MegatronCompat, NoEffectFlagsAreListedOnceAndShownUnderMegatronsName) {
  std::vector<std::string> extra;
  std::string expected;
  for (const MegatronFlag& f : megatron_flag_table()) {
    if (f.cls != FlagClass::NoEffect) continue;
    extra.push_back(f.flag);
    if (f.kind == FlagKind::Value || f.kind == FlagKind::Values)
      extra.push_back(std::string(f.dest) == "data_impl" ? "mmap" : "x");
    expected += (expected.empty() ? "" : ", ") + std::string(f.flag);
  }
  auto r = parse(extra);
  EXPECT_EQ(r->a.compat.no_effect_line(r->p), "> flags with no effect on the CPU backend: " + expected);
  auto none = parse({});
  EXPECT_EQ(none->a.compat.no_effect_line(none->p), "");
  std::map<std::string, std::string> dump;
  for (auto& [k, v] : r->p.dump()) dump[k] = v;
  EXPECT_EQ(dump.at("bias_gelu_fusion"), "True");
  EXPECT_EQ(dump.at("masked_softmax_fusion"), "False");  // given as --no-masked-softmax-fusion
  EXPECT_EQ(dump.at("data_impl"), "mmap");
  EXPECT_EQ(dump.at("deprecated_use_mcore_models"), "True");  // --use-mcore-models
}

TEST(MegatronCompat, OldNamesSetTheirModernFlags) {
  auto r = parse({"--model-parallel-size", "2", "--batch-size", "24", "--warmup", ".01", "--checkpoint-activations",
                  "--checkpoint-num-layers", "2", "--train-iters", "10", "--lr", "1e-4"});
  EXPECT_EQ(r->a.tensor_model_parallel_size, 2);
  EXPECT_EQ(r->a.micro_batch_size, 24);
  EXPECT_DOUBLE_EQ(r->a.lr_warmup_fraction, 0.01);
  EXPECT_TRUE(r->p.was_set("--lr-warmup-fraction"));
  EXPECT_EQ(r->a.recompute_granularity, "full");
  EXPECT_EQ(r->a.recompute_method, "uniform");
  EXPECT_EQ(r->a.recompute_num_layers, 2);
  r->a.validate_layout(8);  // Megatron's default global batch: micro x data-parallel (v1: no accumulation)
  EXPECT_EQ(*r->a.global_batch_size, 24 * 4);
  EXPECT_EQ(r->a.model_config(50257).activation, ActivationKind::Gelu);
  EXPECT_EQ(parse({"--no-bias-gelu-fusion"})->a.model_config(50257).activation, ActivationKind::GeluExact);
  EXPECT_EQ(parse({"--no-bias-gelu-fusion", "--openai-gelu"})->a.model_config(50257).activation, ActivationKind::Gelu);
  EXPECT_EQ(parse({"--use-rotary-position-embeddings"})->a.position_embedding_type, "rope");
  EXPECT_EQ(parse({"--no-position-embedding"})->a.position_embedding_type, "none");
  EXPECT_EQ(parse({"--encoder-seq-length", "48", "--max-position-embeddings", "64"})->a.seq_length, 48);
}

TEST(MegatronCompat, ChoicesLoomDoesNotHaveAreRefusedByName) {
  EXPECT_EQ(error_of({"--optimizer", "sgd", "--sgd-momentum", "0.8"}), "");  // implemented: torch.optim.SGD
  EXPECT_EQ(error_of({"--override-lr-scheduler", "--use-checkpoint-lr-scheduler"}),
            "--override-lr-scheduler and --use-checkpoint-lr-scheduler: give only one (the command line's learning-rate "
            "schedule or the checkpoint's)");
  EXPECT_EQ(error_of({"--use-checkpoint-opt_param-scheduler"}), "");
  EXPECT_EQ(error_of({"--dataloader-type", "cyclic"}), "");  // implemented since: Megatron's random sampler
  EXPECT_EQ(error_of({"--dataloader-type", "single"}), "");
  EXPECT_EQ(error_of({"--data-impl", "cached"}),
            "--data-impl cached: Megatron's cached IndexedDataset format is not supported by Loom (it reads mmap)");
  EXPECT_EQ(error_of({"--deepspeed"}), "--deepspeed needs --deepspeed_config FILE");
  EXPECT_EQ(error_of({"--train-samples", "100", "--train-iters", "5"}), "give only one of --train-iters and --train-samples");
  EXPECT_EQ(error_of({"--train-samples", "100", "--lr-decay-iters", "5"}),
            "--lr-decay-iters goes with --train-iters: use --lr-decay-samples");
  EXPECT_EQ(error_of({"--train-iters", "5", "--lr-decay-samples", "50"}),
            "--lr-decay-samples goes with --train-samples: use --lr-decay-iters");
  EXPECT_EQ(error_of({"--train-iters", "5", "--lr-warmup-samples", "50"}),
            "--lr-warmup-samples goes with --train-samples: use --lr-warmup-iters");
}

TEST(MegatronCompat, ResidualFlagsSetTheModelsShapeAndPrecision) {
  const ModelConfig plain = parse({"--bf16"})->a.model_config(50257);
  EXPECT_FALSE(plain.apply_residual_connection_post_layernorm);
  EXPECT_FALSE(plain.fp32_residual);
  EXPECT_EQ(plain.residual_dtype(), DType::BF16);
  EXPECT_TRUE(parse({"--apply-residual-connection-post-layernorm"})->a.model_config(50257).apply_residual_connection_post_layernorm);
  const ModelConfig fp32_res = parse({"--fp16", "--fp32-residual-connection"})->a.model_config(50257);
  EXPECT_TRUE(fp32_res.fp32_residual);
  EXPECT_EQ(fp32_res.activation_dtype, DType::F16);
  EXPECT_EQ(fp32_res.residual_dtype(), DType::F32);
  EXPECT_EQ(error_of({"--fp32-residual-connection"}),
            "--fp32-residual-connection keeps the residual stream in fp32 while training in half precision: it needs "
            "--fp16 or --bf16");
  EXPECT_EQ(error_of({"--bf16", "--fp32-residual-connection", "--apply-residual-connection-post-layernorm"}),
            "--fp32-residual-connection with --apply-residual-connection-post-layernorm is not supported by Loom (the "
            "residuals are then the norms' half-precision outputs)");
  auto cyclic = parse({"--dataloader-type", "cyclic", "--no-data-sharding"});
  EXPECT_TRUE(cyclic->a.compat.cyclic_data());
  EXPECT_FALSE(cyclic->a.compat.data_sharding);
  EXPECT_TRUE(parse({"--dataloader-type", "cyclic"})->a.compat.data_sharding);
  EXPECT_EQ(error_of({"--dataloader-type", "random"}), "argument --dataloader-type: invalid choice: 'random' (choose from single,cyclic)");
}

TEST(MegatronCompat, FlagsImplementedForIssue16ReachTheRun) {
  auto r = parse({"--optimizer", "sgd", "--sgd-momentum", "0.8", "--init-method-xavier-uniform", "--use-checkpoint-lr-scheduler"});
  EXPECT_DOUBLE_EQ(r->a.sgd_momentum, 0.8);
  EXPECT_TRUE(r->a.model_config(50257).init_method_xavier_uniform);
  EXPECT_FALSE(parse({})->a.model_config(50257).init_method_xavier_uniform);
  EXPECT_TRUE(r->a.compat.use_checkpoint_lr_scheduler);
  std::map<std::string, std::string> dump;
  for (auto& [k, v] : r->p.dump()) dump[k] = v;
  EXPECT_EQ(dump.at("optimizer"), "sgd");
  EXPECT_EQ(dump.at("sgd_momentum"), "0.8");
  EXPECT_EQ(dump.at("init_method_xavier_uniform"), "True");
  EXPECT_EQ(dump.at("use_checkpoint_lr_scheduler"), "True");
}

TEST(MegatronCompat, TrainSamplesSetTheIterationsAsMegatronsUpdateTrainIters) {
  auto r = parse({"--train-samples", "1000", "--global-batch-size", "64", "--micro-batch-size", "8", "--lr", "1e-4"});
  r->a.validate_layout(1);
  EXPECT_EQ(r->a.train_iters, 1000 / 64);  // the partial last batch is dropped
}

TEST(MegatronCompat, RampupSetsTheIterationsThroughTheRamp) {
  auto r = parse({"--train-samples", "96", "--global-batch-size", "8", "--micro-batch-size", "2", "--lr", "1e-4",
                  "--rampup-batch-size", "2", "2", "24"});
  r->a.validate_layout(1);
  EXPECT_EQ(r->a.train_iters, 16);  // 2 x 4, 4 x 2, 6 x 2 up to 28 samples, then (96 - 28) // 8 = 8
  EXPECT_EQ(r->a.num_micro_batches(), 4);
  EXPECT_EQ(r->a.batch_rampup().micro_batch_counts(), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(error_of({"--train-iters", "10", "--rampup-batch-size", "2", "2", "24"}),
            "--rampup-batch-size needs sample-based training: give --train-samples instead of --train-iters");
  EXPECT_EQ(error_of({"--train-samples", "96", "--rampup-batch-size", "2", "2"}),
            "--rampup-batch-size takes 3 values: <start batch size> <batch size increment> <ramp-up samples>");
  // --decrease-batch-size-if-needed lets a global batch that micro x data-parallel does not divide run.
  auto d = parse({"--train-samples", "90", "--global-batch-size", "9", "--micro-batch-size", "2", "--lr", "1e-4",
                  "--decrease-batch-size-if-needed"});
  d->a.validate_layout(1);
  EXPECT_EQ(d->a.num_micro_batches(), 4);
  EXPECT_EQ(d->a.train_iters, 10);  // Megatron: train_samples // global_batch_size, the unrounded batch
}
