// Runs Loom's whole CoCa (CocaModel) on weights and batches written by tests/parity/test_coca_model.py
// and writes what the plain-PyTorch CoCa of tests/parity/coca_reference.py is compared against.
//
//   coca_model_driver --config config.json --in in.safetensors --out out.safetensors
// config.json: the shape (coca_reference.SMALL's keys), "batch", "recompute" (0/1), "steps":
//   0: one forward and backward of the total loss on a zeroed store;
//   N > 0: N training steps as `loom train --model coca` runs them (CocaStep: forward, backward, global
//     gradient norm, clipping, DeepSpeed FusedLamb with EVA-CLIP's parameter groups, the logit_scale clamp),
//     each group's lr from EVA-CLIP's warmup_cosine_lr before the step; then also "lr", "wd", "ld",
//     "tower_lr" / "tower_wd" / "tower_ld" ({tower: value}, optional), "warmup", "total_steps",
//     "clip_norm", "beta1", "beta2", "eps", "max_coeff", "min_coeff".
// in:  every parameter (F32, by name), images [max(steps,1), B, 3, S, S] F32, text [max(steps,1), B, ctx] I32
// out: steps 0: losses [contrastive, caption, total, caption targets], grad.<name> for every parameter;
//      steps N: losses [N, 5] (contrastive, caption, total, gradient norm, skipped) and step<s>.<name>, the
//      weights after step s.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/models/coca/coca_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/coca_param_groups.h"
#include "loom/optim/warmup_cosine.h"
#include "loom/train/coca_step.h"
#include "coca_shape_json.h"

using namespace loom;

namespace {

TensorEntry f32_entry(const std::string& name, std::vector<int64_t> shape, const float* data) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return TensorEntry{name, DType::F32, std::move(shape), data, n * sizeof(float)};
}

const void* tensor(const SafetensorsFile& f, const std::string& name, DType dtype, size_t count) {
  const TensorEntry& e = f.get(name);
  if (e.dtype != dtype || e.bytes != count * 4) fail(name + ": expected " + std::to_string(count) + " 4-byte values");
  return e.data;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string config, in, out;
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string a = argv[i];
      if (a == "--config") config = argv[i + 1];
      else if (a == "--in") in = argv[i + 1];
      else if (a == "--out") out = argv[i + 1];
      else fail("unknown flag " + a);
    }
    std::ifstream cf(config);
    if (!cf) fail("cannot open " + config);
    const nlohmann::json j = nlohmann::json::parse(cf);
    const CocaConfig cfg = coca_json::shape(j);
    const int B = j.at("batch"), steps = j.at("steps");
    CocaModel model(cfg, B, ParamStorage{}, 16, int(j.at("recompute")) != 0, nullptr);
    ParamStore& ps = model.params();

    const SafetensorsFile f(in);
    ps.acquire_full();
    for (Param& p : ps.all()) {
      const float* src = static_cast<const float*>(tensor(f, p.name, DType::F32, size_t(p.numel())));
      std::copy(src, src + p.numel(), p.value.f32());
    }
    ps.commit_full();
    ps.release_full();
    const int S = cfg.vision.image_size, ctx = cfg.text.context_length, batches = steps > 0 ? steps : 1;
    const size_t image_n = size_t(B) * 3 * S * S, text_n = size_t(B) * ctx;
    const float* images = static_cast<const float*>(tensor(f, "images", DType::F32, image_n * batches));
    const int32_t* text = static_cast<const int32_t*>(tensor(f, "text", DType::I32, text_n * batches));

    std::vector<TensorEntry> outs;
    std::vector<std::vector<float>> keep;  // the bytes the entries point at
    if (steps == 0) {
      ps.zero_grads();
      const CocaLosses l = model.forward(images, text, B);
      model.backward(1.0f);
      keep.push_back({float(l.contrastive), float(l.caption), float(l.total(cfg)), float(l.caption_targets)});
      outs.push_back(f32_entry("losses", {4}, keep.back().data()));
      for (const Param& p : ps.all()) outs.push_back(f32_entry("grad." + p.name, p.shape, p.grad.f32()));
      write_safetensors(out, outs);
      return 0;
    }

    const ParamGroupTable table = coca_param_groups(cfg, coca_json::group_settings(j));
    AdamWOptions o;
    o.kind = OptimizerKind::Lamb;
    o.lamb_deepspeed = true;  // EVA-CLIP under DeepSpeed: FusedLamb
    o.beta1 = j.at("beta1");
    o.beta2 = j.at("beta2");
    o.eps = j.at("eps");
    o.lamb_max_coeff = j.at("max_coeff");
    o.lamb_min_coeff = j.at("min_coeff");
    AdamW opt(ps, o);
    std::vector<double> wds;
    for (const ParamGroup& g : table.groups) wds.push_back(g.weight_decay);
    opt.set_param_groups(table.group_of_param, wds);
    opt.reset_main_weights();
    CocaStep step(model, opt, nullptr, nullptr, j.at("clip_norm"));
    std::vector<double> lrs;
    std::vector<float> losses;
    const int64_t warmup = j.at("warmup"), total_steps = j.at("total_steps");
    for (int s = 0; s < steps; s++) {
      evaclip_group_lrs(table, warmup, total_steps, s, lrs);
      opt.set_group_lrs(lrs);
      const CocaStepResult r = step.run(images + image_n * s, text + text_n * s, B, 1.0);
      losses.insert(losses.end(), {float(r.losses.contrastive), float(r.losses.caption), float(r.losses.total(cfg)),
                                   float(r.grad_norm), r.skipped ? 1.f : 0.f});
      ps.acquire_full();
      for (const Param& p : ps.all()) {
        keep.emplace_back(p.value.f32(), p.value.f32() + p.numel());
        outs.push_back(f32_entry("step" + std::to_string(s) + "." + p.name, p.shape, keep.back().data()));
      }
      ps.release_full();
    }
    outs.push_back(f32_entry("losses", {steps, 5}, losses.data()));
    write_safetensors(out, outs);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
