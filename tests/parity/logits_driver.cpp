// Loom's logits for a token sequence, from a checkpoint: the reference side of the export test.
//   logits_driver CHECKPOINT_DIR OUT.bin TOKEN...   (writes float32 [T, padded vocab])
#include <cstdio>
#include <fstream>
#include <numeric>
#include <vector>

#include "loom/ckpt/checkpoint.h"
#include "loom/ckpt/model_weights.h"

using namespace loom;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: logits_driver CHECKPOINT OUT.bin TOKEN...\n");
    return 2;
  }
  try {
    const std::string it = checkpoint_iteration_dir(argv[1]);
    GptConfig cfg = gpt_config_from_metadata(checkpoint_info(it), it);
    cfg.hidden_dropout = cfg.attention_dropout = 0;
    std::vector<int32_t> tokens;
    for (int i = 3; i < argc; i++) tokens.push_back(std::atoi(argv[i]));
    const int T = int(tokens.size());
    GptModel model(cfg, 1, T);
    load_checkpoint(it, model, nullptr, {false, true});
    std::vector<int32_t> positions(static_cast<size_t>(T));
    std::iota(positions.begin(), positions.end(), 0);
    MicroBatch mb;
    mb.batch = 1;
    mb.seq = T;
    mb.tokens = tokens.data();
    mb.positions = positions.data();
    StepContext ctx;
    ctx.mb = &mb;
    ctx.training = false;
    model.forward(ctx);
    std::vector<int> rows(static_cast<size_t>(T));
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<float> logits(size_t(T) * size_t(cfg.padded_vocab_size));
    model.logits(rows, logits.data());
    std::ofstream(argv[2], std::ios::binary).write(reinterpret_cast<const char*>(logits.data()),
                                                  std::streamsize(logits.size() * 4));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "logits_driver: %s\n", e.what());
    return 1;
  }
}
