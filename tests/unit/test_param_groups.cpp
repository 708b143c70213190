// EVA-CLIP's parameter groups, layer-decay values and learning-rate schedule for CoCa-B/16 against the
// lines reference log 000 printed (tests/data/coca_groups/, copied from the log): the group table byte
// for byte, the ZeRO-1 partition sizes of every group, DeepSpeed's lr lists at steps 0 and 1000 and the
// train line's LR figures.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "loom/core/error.h"
#include "loom/optim/coca_param_groups.h"
#include "loom/optim/warmup_cosine.h"
#include "loom/train/deepspeed_progress.h"

namespace loom {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(LOOM_SOURCE_DIR) + "/tests/data/coca_groups/" + name, std::ios::binary);
  EXPECT_TRUE(bool(f)) << name;
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> fixture_lines(const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(fixture(name));
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Log 000's arguments: lr 5e-4, wd 0.05, ld 1.0; visual 2e-4 / 0.05 / 0.75; text and text_decoder
// 2e-5 / 0.05 / 0.75.
EvaClipGroupSettings log000_settings() {
  EvaClipGroupSettings s;
  s.lr = 0.0005;
  s.wd = 0.05;
  s.ld = 1.0;
  s.visual_lr = 0.0002;
  s.visual_wd = 0.05;
  s.visual_ld = 0.75;
  s.text_lr = s.text_decoder_lr = 2e-05;
  s.text_wd = s.text_decoder_wd = 0.05;
  s.text_ld = s.text_decoder_ld = 0.75;
  return s;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(ParamGroups, CocaB16GroupCountsEqualLog000) {
  const ParamGroupTable t = coca_param_groups(coca_b16_config(), log000_settings());
  ASSERT_EQ(t.groups.size(), 83u);
  ASSERT_EQ(t.tower_groups.size(), 4u);
  const int expect[] = {28, 28, 26, 1};
  for (int k = 0; k < 4; k++) EXPECT_EQ(t.tower_groups[k].second - t.tower_groups[k].first, expect[k]);
  EXPECT_EQ(param_group_count_line(t), "num of optimizer.param_groups: 83");
  for (size_t i = 0; i < t.group_of_param.size(); i++) EXPECT_GE(t.group_of_param[i], 0) << t.names[i];
}

TEST(ParamGroups, EveryGroupSizeEqualsLog000ZeroPartition) {
  // "Rank: 0 partition count [4, ...] and sizes[(38208, False), ...]": DeepSpeed ZeRO-1 flattens each
  // group, pads it to a multiple of 2 x 4 ranks (nccl_start_alignment_factor 2) and gives each rank a
  // quarter. Only logit_scale's group (1 element) needs padding: 8 / 4 = 2.
  const std::string line = fixture("log000_partition_rank0.txt");
  std::vector<int64_t> sizes;
  const std::regex item(R"(\((\d+), False\))");
  for (auto it = std::sregex_iterator(line.begin(), line.end(), item); it != std::sregex_iterator(); ++it)
    sizes.push_back(std::stoll((*it)[1]));
  const ParamGroupTable t = coca_param_groups(coca_b16_config(), log000_settings());
  ASSERT_EQ(sizes.size(), t.groups.size());
  int64_t padding = 0;
  for (size_t g = 0; g < sizes.size(); g++) {
    const int64_t padded = (t.groups[g].numel + 7) / 8 * 8;
    EXPECT_EQ(padded, 4 * sizes[g]) << t.groups[g].name;
    padding += padded - t.groups[g].numel;
    if (g + 1 < sizes.size()) {
      EXPECT_EQ(t.groups[g].numel, 4 * sizes[g]) << t.groups[g].name;
    }
  }
  EXPECT_EQ(padding, 7);  // 253,026,056 = 253,026,049 + 7
}

TEST(ParamGroups, AssignedValuesEqualLog000ByteForByte) {
  const ParamGroupTable t = coca_param_groups(coca_b16_config(), log000_settings());
  EXPECT_EQ(assigned_values_lines(t), fixture_lines("log000_assigned_values.txt"));
}

TEST(ParamGroups, GroupTableEqualsLog000ByteForByte) {
  // Tower / Skip weight decay / Num of parameters group / Param groups = {json.dumps(indent=2)} for the
  // four towers: names, order, members, weight decay, lr_scale and lr of every group.
  const ParamGroupTable t = coca_param_groups(coca_b16_config(), log000_settings());
  EXPECT_EQ(join(param_group_lines(t)), fixture("log000_param_groups.txt"));
  std::vector<std::string> logged;
  log_param_groups(t, [&](const std::string& l) { logged.push_back(l); });
  std::vector<std::string> expect = assigned_values_lines(t);
  for (const auto& l : param_group_lines(t)) expect.push_back(l);
  EXPECT_EQ(logged, expect);
}

TEST(ParamGroups, InitialAndStep1000LrsEqualDeepSpeedLines) {
  const ParamGroupTable t = coca_param_groups(coca_b16_config(), log000_settings());
  const auto lists = fixture_lines("log000_deepspeed_lrs.txt");
  ASSERT_EQ(lists.size(), 2u);
  // step=0, before any scheduler call: every group still has its tower's base lr.
  std::vector<double> base;
  for (const auto& g : t.groups) base.push_back(g.lr);
  EXPECT_EQ(python_float_list(base), lists[0]);
  // "lr=[0.0002 x28, 2e-05 x54, 0.0005]"
  for (size_t g = 0; g < base.size(); g++) EXPECT_EQ(base[g], g < 28 ? 0.0002 : g < 82 ? 2e-05 : 0.0005) << g;
  // DeepSpeed's step=1000 line comes after 1000 optimizer steps; the last scheduler call was for i = 999.
  // Warmup 2000, total 5958 x 200 = 1,191,600 steps.
  std::vector<double> lrs;
  evaclip_group_lrs(t, 2000, 1191600, 999, lrs);
  EXPECT_EQ(python_float_list(lrs), lists[1]);
}

TEST(ParamGroups, DeepSpeedProgressLinesOfLog000) {
  // Log 000's lines 5041-5042 after their prefixes: the engine's step=1000 line (2 overflow skips so far,
  // every group's lr of scheduler step 999, LAMB's betas per group as the JSON's list) and the throughput
  // timer's (its samples per second given, memory 5.29 / 28.74 GiB).
  const ParamGroupTable t = coca_param_groups(coca_b16_config(), log000_settings());
  const auto lines = fixture_lines("log000_progress.txt");
  ASSERT_EQ(lines.size(), 2u);
  std::vector<double> lrs;
  evaclip_group_lrs(t, 2000, 1191600, 999, lrs);
  EXPECT_EQ(deepspeed_step_message(1000, 2, lrs, 0.9, 0.999), lines[0]);
  MemoryStats m;
  m.allocated = int64_t(5.29 * double(1ll << 30)) + 12345;  // rounds to 5.29
  m.max_allocated = int64_t(28.7449 * double(1ll << 30));   // rounds to 28.74
  EXPECT_EQ(deepspeed_throughput_message(0, 1000, 1000, 1126.8026294283802, 1211.289158780771, m), lines[1]);
}

std::string six(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6f", v);
  return b;
}

TEST(ParamGroups, TrainLineLrFiguresEqualLog000) {
  // "Global Steps: 1001 ... LR: 0.000002 LR_visual: 0.000100 LR_text: 0.000010" (scheduler step 1000) and
  // "Global Steps: 1601 ... LR: 0.000004 LR_visual: 0.000160 LR_text: 0.000016": LR is the first group's
  // lr, LR_<tower> a group of lr_scale 1.
  const ParamGroupTable t = coca_param_groups(coca_b16_config(), log000_settings());
  std::vector<double> lrs;
  evaclip_group_lrs(t, 2000, 1191600, 1000, lrs);
  EXPECT_EQ(six(lrs[0]), "0.000002");
  EXPECT_EQ(six(lrs[1]), "0.000100");  // visual_layer_13_decay
  EXPECT_EQ(six(lrs[size_t(t.tower_groups[1].first) + 1]), "0.000010");  // text_layer_13_decay
  evaclip_group_lrs(t, 2000, 1191600, 1600, lrs);
  EXPECT_EQ(six(lrs[0]), "0.000004");
  EXPECT_EQ(six(lrs[1]), "0.000160");
  EXPECT_EQ(six(lrs[size_t(t.tower_groups[2].first)]), "0.000016");  // text_decoder_layer_13_decay
}

TEST(ParamGroups, WarmupCosineSchedule) {
  // Python: base * (step + 1) / warmup, then 0.5 * (1 + np.cos(np.pi * e / es)) * base.
  EXPECT_EQ(evaclip_warmup_cosine_lr(0.0002, 2000, 1191600, 0), 0.0002 * 1 / 2000);
  EXPECT_EQ(evaclip_warmup_cosine_lr(0.0002, 2000, 1191600, 1999), 0.0002);
  EXPECT_EQ(evaclip_warmup_cosine_lr(0.0002, 2000, 1191600, 2000), 0.0002);
  EXPECT_NEAR(evaclip_warmup_cosine_lr(1.0, 10, 110, 60), 0.5, 1e-15);
  EXPECT_NEAR(evaclip_warmup_cosine_lr(1.0, 10, 110, 110), 0.0, 1e-15);
  EXPECT_EQ(evaclip_warmup_cosine_lr(1.0, 0, 100, 0), 1.0);  // no warmup: the cosine from step 0
}

TEST(ParamGroups, LayerIds) {
  EXPECT_EQ(evaclip_layer_id("visual.patch_embed.proj.weight", 12), 0);
  EXPECT_EQ(evaclip_layer_id("visual.cls_token", 12), 0);
  EXPECT_EQ(evaclip_layer_id("text.token_embedding.weight", 12), 0);
  EXPECT_EQ(evaclip_layer_id("text.positional_embedding", 12), 0);
  EXPECT_EQ(evaclip_layer_id("visual.blocks.0.attn.q_bias", 12), 1);
  EXPECT_EQ(evaclip_layer_id("text.transformer.resblocks.11.ln_1.weight", 12), 12);
  EXPECT_EQ(evaclip_layer_id("text_decoder.cross_attn.3.ln_1_kv.bias", 12), 4);
  EXPECT_EQ(evaclip_layer_id("bert.encoder.layer.5.output.dense.weight", 12), 6);
  EXPECT_EQ(evaclip_layer_id("visual.proj", 12), 13);
  EXPECT_EQ(evaclip_layer_id("visual.attn_pool.query", 12), 13);
  EXPECT_EQ(evaclip_layer_id("visual.blocksX.3.w", 2), 3);  // no "blocks." match: the last id
}

TEST(ParamGroups, NoLayerDecayGivesPlainGroups) {
  // ld = 1 (EVA-CLIP's default): no assigner, groups decay / no_decay per tower at lr_scale 1.
  EvaClipGroupSettings s;
  s.lr = 1e-3;
  s.wd = 0.1;
  CocaConfig cfg = coca_b16_config();
  const ParamGroupTable t = coca_param_groups(cfg, s);
  EXPECT_TRUE(assigned_values_lines(t).empty());
  ASSERT_EQ(t.groups.size(), 7u);  // visual, text, text_decoder: no_decay + decay; other: no_decay
  EXPECT_EQ(t.groups[0].name, "no_decay");
  EXPECT_EQ(t.groups[1].name, "decay");
  for (const auto& g : t.groups) {
    EXPECT_EQ(g.lr_scale, 1.0);
    EXPECT_EQ(g.lr, 1e-3);
    EXPECT_EQ(g.weight_decay, g.name == "decay" ? 0.1 : 0.0);
  }
}

TEST(ParamGroups, TowerOverridesFallBackToBase) {
  EvaClipGroupSettings s;
  s.lr = 1e-3;
  s.wd = 0.1;
  s.ld = 0.5;
  s.visual_lr = 2e-3;
  s.text_wd = 0.0;  // given: 0 is kept (is not None)
  s.text_ld = 0.0;  // 0 falls back to ld (Python truthiness)
  const auto towers = coca_group_towers(coca_b16_config(), s);
  EXPECT_EQ(towers[0].lr, 2e-3);
  EXPECT_EQ(towers[0].weight_decay, 0.1);
  EXPECT_EQ(towers[1].lr, 1e-3);
  EXPECT_EQ(towers[1].weight_decay, 0.0);
  EXPECT_EQ(towers[1].layer_decay, 0.5);
  EXPECT_EQ(towers[3].tower, "other");
}

TEST(ParamGroups, ParameterWithoutTowerIsAnError) {
  std::vector<TowerGroupSpec> towers(1);
  towers[0].tower = "visual";
  towers[0].prefix = "visual.";
  EXPECT_THROW(build_param_groups({{"visual.a", {2, 2}}, {"logit_scale", {}}}, towers), UserError);
  towers.push_back(towers[0]);
  EXPECT_THROW(build_param_groups({{"visual.a", {2, 2}}}, towers), UserError);
}

}  // namespace
}  // namespace loom
