// Loom's logits for a token sequence, from a checkpoint or a weights file (`loom convert --from hf` output,
// with its model metadata): the Loom side of the Hugging Face export and import tests. Any family the
// metadata describes (GPT, Llama).
//   logits_driver CHECKPOINT_DIR|WEIGHTS.safetensors OUT.bin TOKEN...   (writes float32 [T, padded vocab])
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <vector>

#include "loom/ckpt/checkpoint.h"
#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"

using namespace loom;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: logits_driver CHECKPOINT OUT.bin TOKEN...\n");
    return 2;
  }
  try {
    const std::string src = argv[1];
    const bool is_file = std::filesystem::is_regular_file(src);
    const std::string it = is_file ? src : checkpoint_iteration_dir(src);
    ModelConfig cfg = model_config_from_metadata(is_file ? SafetensorsFile(src).metadata() : checkpoint_info(it), it);
    cfg.hidden_dropout = cfg.attention_dropout = 0;
    std::vector<int32_t> tokens;
    for (int i = 3; i < argc; i++) tokens.push_back(std::atoi(argv[i]));
    const int T = int(tokens.size());
    DecoderModel model(cfg, 1, T);
    if (is_file) load_weights(src, model.params(), &cfg);
    else load_checkpoint(it, model, nullptr, {false, true});
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
