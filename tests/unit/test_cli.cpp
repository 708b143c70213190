// The flag parser and Megatron's argument dump.
#include <gtest/gtest.h>

#include "loom/core/error.h"
#include "loom/util/cli.h"

using namespace loom;

namespace {
bool parse(ArgParser& p, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return p.parse(int(argv.size()), argv.data());
}
}  // namespace

TEST(Cli, ParsesMegatronStyleFlags) {
  ArgParser p("loom test", "test");
  int layers = 0;
  double lr = 0;
  bool flag = false;
  std::vector<std::string> paths;
  std::string style = "linear";
  p.add_int("--num-layers", &layers, "");
  p.add_float("--lr", &lr, "");
  p.add_flag("--fp16", &flag, "");
  p.add_strings("--data-path", &paths, "");
  p.add_choice("--lr-decay-style", &style, {"linear", "cosine"}, "");
  EXPECT_TRUE(parse(p, {"--num-layers", "4", "--lr=1.5e-4", "--fp16", "--data-path", "0.3", "a", "0.7", "b",
                        "--lr-decay-style", "cosine"}));
  EXPECT_EQ(layers, 4);
  EXPECT_DOUBLE_EQ(lr, 1.5e-4);
  EXPECT_TRUE(flag);
  EXPECT_EQ(paths, (std::vector<std::string>{"0.3", "a", "0.7", "b"}));
  EXPECT_EQ(style, "cosine");
  EXPECT_TRUE(p.was_set("--lr"));
}

TEST(Cli, RejectsBadInputWithTheFlagNamed) {
  ArgParser p("loom test", "test");
  int layers = 0;
  std::string style = "linear";
  p.add_int("--num-layers", &layers, "");
  p.add_choice("--lr-decay-style", &style, {"linear", "cosine"}, "");
  try {
    parse(p, {"--num-layers", "four"});
    FAIL();
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "argument --num-layers: invalid int value: 'four'");
  }
  EXPECT_THROW(parse(p, {"--num-layerz", "4"}), UserError);
  EXPECT_THROW(parse(p, {"--num-layers"}), UserError);
  EXPECT_THROW(parse(p, {"--num-layers", "4x"}), UserError);
  EXPECT_THROW(parse(p, {"--lr-decay-style", "square"}), UserError);
}

TEST(Cli, PythonFloatRepr) {
  EXPECT_EQ(python_float(0.9), "0.9");
  EXPECT_EQ(python_float(1e-8), "1e-08");
  EXPECT_EQ(python_float(0.00015), "0.00015");
  EXPECT_EQ(python_float(1.0), "1.0");
  EXPECT_EQ(python_float(0.01), "0.01");
  EXPECT_EQ(python_float(4294967296.0), "4294967296.0");
  EXPECT_EQ(python_float(1e-05), "1e-05");
  EXPECT_EQ(python_float(1e16), "1e+16");
}

TEST(Cli, ArgumentBlockMatchesMegatron) {
  // Lines copied from reference log 002.
  std::string block = format_arguments({{"accumulate_allreduce_grads_in_fp32", "False"}, {"adam_beta1", "0.9"}});
  EXPECT_EQ(block,
            "------------------------ arguments ------------------------\n"
            "  accumulate_allreduce_grads_in_fp32 .............. False\n"
            "  adam_beta1 ...................................... 0.9\n"
            "-------------------- end of arguments ---------------------\n");
}

TEST(Cli, StoreFalseFlagsShowUnderTheirDest) {
  // Megatron: --no-log-loss-scale-to-tensorboard has dest log_loss_scale_to_tensorboard (reference log 002
  // prints "log_loss_scale_to_tensorboard ... True" when the flag is not given).
  ArgParser p("loom test", "test");
  bool scale = true, eod = true;
  p.add_no_flag("--no-log-loss-scale-to-tensorboard", &scale, "", "log_loss_scale_to_tensorboard");
  p.add_no_flag("--no-stop-at-eod", &eod, "");
  using Dump = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(p.dump(), (Dump{{"log_loss_scale_to_tensorboard", "True"}, {"no_stop_at_eod", "True"}}));
  EXPECT_TRUE(parse(p, {"--no-log-loss-scale-to-tensorboard"}));
  EXPECT_FALSE(scale);
  EXPECT_EQ(p.dump().front(), (std::pair<std::string, std::string>{"log_loss_scale_to_tensorboard", "False"}));
}

TEST(Cli, ShownIsTheDumpsValueAndFirstRegistrationWins) {
  // ArgParser::shown answers what dump() would show under a name (MegatronCompat::apply reads single values
  // with it); a name registered twice (a flag and another's dest) shows the first one's value in both.
  ArgParser p("loom test", "test");
  int64_t layers = 4;
  std::string impl = "infer", other = "x";
  bool flag = true;
  p.add_int("--num-layers", &layers, "");
  p.add_string("--data-impl", &impl, "");
  p.add_no_flag("--no-thing", &flag, "", "thing");
  p.add_string("--thing", &other, "");
  p.add_alias("--layers", "--num-layers");
  EXPECT_TRUE(parse(p, {"--layers", "7", "--data-impl=mmap"}));
  EXPECT_TRUE(p.was_set("--num-layers"));
  EXPECT_TRUE(p.was_set("--layers"));
  EXPECT_FALSE(p.was_set("--thing"));
  EXPECT_TRUE(p.has("--layers"));
  EXPECT_FALSE(p.has("--nope"));
  for (const auto& [name, value] : p.dump()) EXPECT_EQ(p.shown(name), value) << name;
  EXPECT_EQ(p.shown("num_layers"), "7");
  EXPECT_EQ(p.shown("data_impl"), "mmap");
  EXPECT_EQ(p.shown("thing"), "True");
  EXPECT_EQ(p.shown("num-layers"), std::nullopt);
  EXPECT_EQ(p.shown("nope"), std::nullopt);
  using Dump = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(p.dump(), (Dump{{"data_impl", "mmap"}, {"num_layers", "7"}, {"thing", "True"}}));
}
