// A calibrated device file (`loom plan --hardware FILE.json`, as `loom bench --calibrate` writes it): the
// input is the file. find_hardware() must refuse it with one UserError or return a device whose JSON
// (hardware_to_json) reads back to the same JSON, and on which a small GPT's step is predicted with finite,
// non-negative times.
#include <cmath>

#include "fuzz_util.h"
#include "loom/plan/hardware.h"
#include "loom/plan/time_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const std::string path = fuzz::write_scratch("hw.json", std::string_view(reinterpret_cast<const char*>(data), size));
  Hardware hw;
  bool ok = false;
  fuzz::expect_user_errors_only([&] {
    hw = find_hardware(path);
    ok = true;
  });
  if (!ok) return 0;
  const std::string json = hardware_to_json(hw);
  Hardware again;
  try {
    again = parse_hardware_json(json, "round trip");
  } catch (...) {
    std::abort();  // what was accepted must be written in a form that is accepted again
  }
  if (hardware_to_json(again) != json) std::abort();
  ModelConfig c;
  c.num_layers = 2, c.hidden_size = 64, c.num_attention_heads = 4, c.ffn_hidden_size = 256, c.seq_length = 32;
  c.max_position_embeddings = 32, c.vocab_size = 1000, c.padded_vocab_size = 1024;
  PlanLayout l;
  l.micro_batch = 2, l.global_batch = 8;
  fuzz::expect_user_errors_only([&] {
    const StepPrediction p = predict_step(c, l, hw);
    for (double t : {p.step_seconds, p.forward_seconds, p.backward_seconds, p.optimizer_seconds})
      if (!std::isfinite(t) || t < 0) std::abort();
  });
  return 0;
}
