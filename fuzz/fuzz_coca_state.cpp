// A CoCa checkpoint's state.json (`loom train --model coca --resume`): the input is state.json SEP the bytes
// of model.safetensors (only its size and CRC-32 are checked here; fuzz_safetensors covers its content).
// Both are written into a tag directory and read_coca_state() parses them exactly as
// load_coca_checkpoint() does before it reads any tensor, against a fixed model shape (kShape below; the
// seeds of fuzz/make_seeds.py match it).
#include <filesystem>

#include "fuzz_util.h"
#include "loom/ckpt/coca_state.h"

namespace {

const nlohmann::json& shape() {
  static const nlohmann::json s = {{"image_size", 32},      {"patch_size", 8},         {"vision_width", 16},
                                   {"vision_layers", 1},    {"vision_heads", 2},       {"vision_mlp_hidden", 32},
                                   {"rope_pt_grid", 0},     {"text_width", 16},        {"text_layers", 1},
                                   {"text_heads", 2},       {"text_mlp_hidden", 32},   {"text_context_length", 8},
                                   {"text_vocab_size", 64}, {"decoder_layers", 1},     {"pooler_queries", 4},
                                   {"pooler_heads", 2},     {"embed_dim", 8}};
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  static const std::string dir = [] {
    const std::string d = fuzz::scratch_path("epoch_1");
    std::filesystem::create_directories(d);
    return d;
  }();
  const auto parts = fuzz::split_parts(data, size, 2);
  fuzz::write_file(dir + "/state.json", parts[0]);
  fuzz::write_file(dir + "/model.safetensors", parts[1]);
  fuzz::expect_user_errors_only([&] {
    const CocaTrainState st = read_coca_state(dir, shape());
    if (st.has_scaler && st.scaler.scale != st.scaler.scale) std::fputc('\0', stderr);  // use the result
  });
  return 0;
}
