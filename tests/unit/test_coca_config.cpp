// CoCa-B/16's parameter list against the counts reference log 000 prints (number of total params,
// visual, text) and the ZeRO partition sizes it logs for EVA-CLIP's first parameter groups.
#include <gtest/gtest.h>

#include <map>

#include "loom/core/error.h"
#include "loom/models/coca/coca_config.h"

namespace loom {
namespace {

TEST(CocaConfig, B16CountsEqualLog000) {
  const CocaParamCounts c = coca_parameter_counts(coca_b16_config());
  EXPECT_EQ(c.total, 253026049);
  EXPECT_EQ(c.visual, 88630528);
  EXPECT_EQ(c.text, 63428096);
  EXPECT_EQ(c.text_decoder, 100967424);
  EXPECT_EQ(c.other, 1);
}

TEST(CocaConfig, B16StateDictKeys) {
  // Log 000: "num of model state_dict keys: 770" = parameters + the rope buffers (freqs_cos, freqs_sin of
  // visual.rope and of each of the 12 blocks' attn.rope).
  const auto specs = coca_parameter_specs(coca_b16_config());
  EXPECT_EQ(specs.size() + 2 + 2 * 12, 770u);
  std::map<std::string, int> seen;
  for (const auto& p : specs) EXPECT_EQ(seen[p.name]++, 0) << p.name;
}

TEST(CocaConfig, B16VisualGroupSizesEqualLog000Partitions) {
  // "partition count [4, ...] and sizes[(38208, False), (688256, False), (147456, False), (3968, False), ...":
  // EVA-CLIP's groups visual_layer_0_no_decay (cls, pos, patch bias), visual_layer_13_decay (proj, the
  // poolers' queries and weights), visual_layer_0_decay (patch weight), visual_layer_1_no_decay, over 4 ranks.
  int64_t layer0_no_decay = 0, layer13_decay = 0, layer0_decay = 0, layer1_no_decay = 0;
  for (const auto& p : coca_parameter_specs(coca_b16_config())) {
    if (p.tower != "visual") continue;
    const bool no_decay = p.shape.size() < 2 || p.name == "visual.cls_token" || p.name == "visual.pos_embed";
    const bool layer0 = p.name.rfind("visual.patch_embed", 0) == 0 || p.name == "visual.cls_token" ||
                        p.name == "visual.pos_embed";
    const bool layer1 = p.name.rfind("visual.blocks.0.", 0) == 0;
    const bool blocks = p.name.rfind("visual.blocks.", 0) == 0;
    if (layer0 && no_decay) layer0_no_decay += p.numel();
    if (layer0 && !no_decay) layer0_decay += p.numel();
    if (layer1 && no_decay) layer1_no_decay += p.numel();
    if (!layer0 && !blocks && !no_decay) layer13_decay += p.numel();
  }
  EXPECT_EQ(layer0_no_decay, 38208 * 4);
  EXPECT_EQ(layer13_decay, 688256 * 4);
  EXPECT_EQ(layer0_decay, 147456 * 4);
  EXPECT_EQ(layer1_no_decay, 3968 * 4);
}

TEST(CocaConfig, RejectsImpossibleShapes) {
  CocaConfig c = coca_b16_config();
  c.vision.image_size = 225;
  EXPECT_THROW(validate_coca_config(c), UserError);
  c = coca_b16_config();
  c.vision.heads = 7;
  EXPECT_THROW(validate_coca_config(c), UserError);
  c = coca_b16_config();
  c.decoder.width = 256;
  EXPECT_THROW(validate_coca_config(c), UserError);
  EXPECT_NO_THROW(validate_coca_config(coca_b16_config()));
}

}  // namespace
}  // namespace loom
