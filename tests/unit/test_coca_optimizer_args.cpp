// EVA-CLIP's group flags: Loom's and EVA-CLIP's spellings set the same values, --wd is --weight-decay, the
// towers fall back to the base values, and a group flag naming no tower is one clear error.
#include <gtest/gtest.h>

#include "loom/core/error.h"
#include "loom/train/coca_optimizer_args.h"
#include "loom/util/cli.h"

namespace loom {
namespace {

struct Parsed {
  double lr = 5e-4, wd = 0.05;
  CocaOptimizerArgs a;
  ArgParser p{"t", "t"};
  Parsed() {
    p.add_float("--lr", &lr, "lr");
    p.add_float("--weight-decay", &wd, "wd");
    a.register_flags(p);
  }
  void parse(std::vector<std::string> args) {
    CocaOptimizerArgs::check_tower_flags(p, args);
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    p.parse(int(argv.size()), argv.data());
    a.validate();
  }
};

TEST(CocaOptimizerArgs, Log000Flags) {
  Parsed t;
  t.parse({"--lr", "0.0005", "--wd", "0.05", "--ld", "1.0", "--visual_lr", "0.0002", "--visual_wd", "0.05",
           "--visual_ld", "0.75", "--text-lr", "2e-5", "--text_wd", "0.05", "--text-ld", "0.75",
           "--text_decoder_lr", "2e-5", "--text-decoder-wd", "0.05", "--text_decoder_ld", "0.75"});
  const EvaClipGroupSettings s = t.a.settings(t.lr, t.wd);
  EXPECT_EQ(s.lr, 0.0005);
  EXPECT_EQ(s.wd, 0.05);
  EXPECT_EQ(*s.visual_lr, 0.0002);
  EXPECT_EQ(*s.visual_ld, 0.75);
  EXPECT_EQ(*s.text_lr, 2e-5);
  EXPECT_EQ(*s.text_decoder_wd, 0.05);
  EXPECT_EQ(*s.text_decoder_ld, 0.75);
  EXPECT_TRUE(t.p.was_set("--visual-lr"));
  EXPECT_TRUE(t.p.was_set("--weight-decay"));
}

TEST(CocaOptimizerArgs, DefaultsFallBack) {
  Parsed t;
  t.parse({"--lr", "1e-3"});
  const EvaClipGroupSettings s = t.a.settings(t.lr, t.wd);
  EXPECT_FALSE(s.visual_lr);
  EXPECT_EQ(s.ld, 1.0);
  const auto towers = coca_group_towers(coca_b16_config(), s);
  for (const auto& tw : towers) {
    EXPECT_EQ(tw.lr, 1e-3);
    EXPECT_EQ(tw.weight_decay, 0.05);
  }
}

TEST(CocaOptimizerArgs, UnknownTowerAndBadValues) {
  auto message = [](std::vector<std::string> args) {
    Parsed t;
    try {
      t.parse(std::move(args));
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({"--vision-lr", "1e-4"}),
            "--vision-lr: unknown tower 'vision' (the parameter-group towers are visual, text and text-decoder)");
  EXPECT_EQ(message({"--image_wd=0.1"}),
            "--image_wd: unknown tower 'image' (the parameter-group towers are visual, text and text-decoder)");
  EXPECT_EQ(message({"--visual-lr", "-1"}), "--visual-lr must not be negative");
  EXPECT_EQ(message({"--text-ld", "1.5"}), "--text-ld must be within [0, 1]");
  EXPECT_EQ(message({"--ld", "0"}), "--ld must be within (0, 1]");
}

}  // namespace
}  // namespace loom
