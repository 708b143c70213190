// Runs Loom on a model and data written by tests/parity/test_gpt_parity.py and writes what the PyTorch
// reference is compared against: per-iteration loss, grad norm and learning rate, the gradients of the
// first iteration and the weights after the last. The same driver runs GPT and Llama (test_llama_parity.py):
// the architecture comes from the config JSON.
//
//   gpt_parity_driver --config config.json --weights init.safetensors --tokens tokens.bin
//                     --loss-mask loss_mask.bin --out out.safetensors
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/train/trainer.h"

using namespace loom;

template <typename T>
std::vector<T> read_raw(const std::string& path, size_t count) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open " + path);
  std::vector<T> v(count);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(count * sizeof(T)));
  if (size_t(f.gcount()) != count * sizeof(T)) fail(path + ": expected " + std::to_string(count) + " values");
  return v;
}

int main(int argc, char** argv) {
  try {
    std::string config, weights, tokens_path, mask_path, out;
    for (int i = 1; i + 1 < argc; i += 2) {
      std::string a = argv[i];
      if (a == "--config") config = argv[i + 1];
      else if (a == "--weights") weights = argv[i + 1];
      else if (a == "--tokens") tokens_path = argv[i + 1];
      else if (a == "--loss-mask") mask_path = argv[i + 1];
      else if (a == "--out") out = argv[i + 1];
      else fail("unknown flag " + a);
    }
    std::ifstream cf(config);
    if (!cf) fail("cannot open " + config);
    nlohmann::json j = nlohmann::json::parse(cf);
    // The model's shape and architecture in the keys of Loom's weights metadata (model_config_metadata):
    // GPT's defaults for whatever the file leaves out (normalization, activation, position_embedding_type,
    // num_query_groups, kv_channels, add_bias_linear, tie_embeddings, rotary_*, rope_*); vocab_size
    // defaults to the padded size.
    std::map<std::string, std::string> meta;
    for (auto it = j.begin(); it != j.end(); ++it)
      meta[it.key()] = it->is_string() ? it->get<std::string>() : it->is_boolean() ? (it->get<bool>() ? "1" : "0")
                                                                                   : it->dump();
    if (!meta.count("vocab_size")) meta["vocab_size"] = meta["padded_vocab_size"];
    ModelConfig c = model_config_from_metadata(meta, config);
    c.hidden_dropout = 0;
    c.attention_dropout = 0;
    const int mb = j.at("micro_batch_size"), gbs = j.at("global_batch_size"), steps = j.at("steps");
    const int T = c.seq_length, M = gbs / mb;

    DecoderModel model(c, mb, T);
    load_weights(weights, model.params(), &c);
    AdamWOptions ao;
    ao.beta1 = j.at("adam_beta1");
    ao.beta2 = j.at("adam_beta2");
    ao.eps = j.at("adam_eps");
    ao.weight_decay = j.at("weight_decay");
    if (j.value("optimizer", std::string("adam")) == "sgd") {  // torch.optim.SGD(momentum, weight_decay)
      ao.kind = OptimizerKind::Sgd;
      ao.sgd_momentum = j.at("sgd_momentum");
    }
    AdamW opt(model.params(), ao);
    LrSchedule ls;
    ls.max_lr = j.at("lr");
    ls.min_lr = j.at("min_lr");
    ls.style = j.at("lr_decay_style");
    ls.warmup_steps = int64_t(j.at("lr_warmup_iters")) * gbs;
    ls.decay_steps = int64_t(j.at("lr_decay_iters")) * gbs;
    LrScheduler sched(ls);
    Timers timers;
    TrainStepOptions so;
    so.micro_batch = mb;
    so.num_micro_batches = M;
    so.seq = T;
    so.clip_grad = j.at("clip_grad");
    Trainer trainer(model, opt, sched, so, timers);

    auto tokens = read_raw<int32_t>(tokens_path, size_t(steps) * gbs * (T + 1));
    auto mask = read_raw<float>(mask_path, size_t(steps) * gbs * T);
    std::vector<float> losses, norms, lrs;
    std::vector<float> first_grads;
    for (int s = 0; s < steps; s++) {
      model.params().zero_grads();
      double loss = 0;
      for (int m = 0; m < M; m++) {
        BatchBuffer& buf = trainer.batch_buffer();
        const size_t first = size_t(s) * gbs + size_t(m) * mb;
        std::memcpy(buf.samples().data(), tokens.data() + first * (T + 1), sizeof(int32_t) * mb * (T + 1));
        buf.build({});
        std::memcpy(buf.loss_mask(), mask.data() + first * T, sizeof(float) * mb * T);
        loss += trainer.forward_backward_loaded(0, 1.0f / float(M));
      }
      if (s == 0) first_grads.assign(model.params().grads(), model.params().grads() + model.params().numel());
      auto [norm, lr] = *trainer.optimizer_step();  // fp32: never skipped
      sched.step(gbs);
      losses.push_back(float(loss / M));
      norms.push_back(float(norm));
      lrs.push_back(float(lr));
    }

    std::vector<TensorEntry> entries;
    entries.push_back({"loss", DType::F32, {steps}, losses.data(), losses.size() * 4});
    entries.push_back({"grad_norm", DType::F32, {steps}, norms.data(), norms.size() * 4});
    entries.push_back({"lr", DType::F32, {steps}, lrs.data(), lrs.size() * 4});
    for (const auto& p : model.params().all()) {
      entries.push_back({"grad." + p.name, DType::F32, p.shape, first_grads.data() + p.offset, size_t(p.numel()) * 4});
      entries.push_back({"final." + p.name, DType::F32, p.shape, p.value.f32(), size_t(p.numel()) * 4});
    }
    write_safetensors(out, entries);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpt_parity_driver: error: %s\n", e.what());
    return 2;
  }
}
