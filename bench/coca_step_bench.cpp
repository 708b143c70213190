// Loom's side of bench/coca_step.sh: one whole CoCa training step as `loom train --model coca` runs it
// (CocaStep: forward of both losses, backward, gradient norm and clipping, DeepSpeed FusedLamb over
// EVA-CLIP's layer-decay groups with the warmup-cosine lrs, the logit_scale clamp), fp32, one process, on
// random images and captions, at the shape bench/coca_step_torch.py --print-config gives (its PyTorch
// reference's). Timed per step: the median wall and process CPU time of the timed steps and the median
// forward / backward / optimizer split; also this process's best rate of the model's commonest GEMM
// shapes, the ceiling the step is compared with. Prints one JSON line.
//   coca_step_bench --config config.json [--batch 16] [--steps 2] [--warmup 1] [--recompute 0|1]
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../tests/parity/coca_shape_json.h"
#include "loom/core/error.h"
#include "loom/core/rng.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/models/coca/coca_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/warmup_cosine.h"
#include "loom/train/coca_step.h"

using namespace loom;

namespace {

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The best rate (GFLOP per wall-second and per CPU-second, 3 repetitions after a warm-up) over the
// step's big GEMM shapes: the text/decoder MLP and q/k/v, the vision MLP and q/k/v (rows B x tokens).
void gemm_ceiling(const CocaConfig& c, int B, double& wall_rate, double& cpu_rate) {
  struct Shape {
    int M, N, K;
  };
  const int Mt = B * c.text.context_length, Mv = B * c.vision.tokens();
  const Shape shapes[] = {{Mt, c.text.mlp_hidden, c.text.width}, {Mt, 3 * c.text.width, c.text.width},
                          {Mv, c.vision.mlp_hidden, c.vision.width}, {Mv, 3 * c.vision.width, c.vision.width}};
  wall_rate = cpu_rate = 0;
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.M) * s.K, 0.5f), b(size_t(s.N) * s.K, 0.25f), out(size_t(s.M) * s.N);
    const double flop = 2.0 * s.M * s.N * double(s.K);
    for (int r = 0; r < 4; r++) {
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_now();
      cpu::gemm(false, true, s.M, s.N, s.K, 1.f, a.data(), s.K, b.data(), s.K, 0.f, out.data(), s.N);
      const double w = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cs = cpu_now() - c0;
      if (r == 0) continue;  // warm-up
      wall_rate = std::max(wall_rate, flop / w / 1e9);
      if (cs > 0) cpu_rate = std::max(cpu_rate, flop / cs / 1e9);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string config;
    int batch = 16, steps = 2, warmup = 1, recompute = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string a = argv[i];
      if (a == "--config") config = argv[i + 1];
      else if (a == "--batch") batch = std::stoi(argv[i + 1]);
      else if (a == "--steps") steps = std::stoi(argv[i + 1]);
      else if (a == "--warmup") warmup = std::stoi(argv[i + 1]);
      else if (a == "--recompute") recompute = std::stoi(argv[i + 1]);
      else fail("unknown flag " + a);
    }
    if (steps < 1) fail("--steps must be at least 1");
    std::ifstream cf(config);
    if (!cf) fail("cannot open --config " + config);
    const nlohmann::json j = nlohmann::json::parse(cf);
    const CocaConfig cfg = coca_json::shape(j);

    CocaModel model(cfg, batch, ParamStorage{}, 16, recompute != 0, nullptr);
    model.init(1);
    const ParamGroupTable table = coca_param_groups(cfg, coca_json::group_settings(j));
    AdamWOptions o;
    o.kind = OptimizerKind::Lamb;
    o.lamb_deepspeed = true;
    o.beta1 = j.at("beta1");
    o.beta2 = j.at("beta2");
    o.eps = j.at("eps");
    o.lamb_max_coeff = j.at("max_coeff");
    o.lamb_min_coeff = j.at("min_coeff");
    AdamW opt(model.params(), o);
    std::vector<double> wds;
    for (const ParamGroup& g : table.groups) wds.push_back(g.weight_decay);
    opt.set_param_groups(table.group_of_param, wds);
    CocaStep step(model, opt, nullptr, nullptr, j.at("clip_norm"));

    // Random normalised images; captions SOT, words, EOT (the largest id), pad, of varied lengths.
    const int S = cfg.vision.image_size, ctx = cfg.text.context_length, V = cfg.text.vocab_size;
    std::vector<float> images(size_t(batch) * 3 * S * S);
    fill_normal(images.data(), 0, int64_t(images.size()), 1, 1.0f);
    std::vector<int32_t> text(size_t(batch) * ctx, 0);
    Rng rng(2);
    for (int b = 0; b < batch; b++) {
      const int len = 3 + int(rng.next_u32() % uint32_t(ctx - 2));
      int32_t* t = text.data() + size_t(b) * ctx;
      t[0] = V - 2;
      for (int k = 1; k + 1 < len; k++) t[k] = 1 + int32_t(rng.next_u32() % uint32_t(V - 3));
      t[len - 1] = V - 1;
    }

    const int64_t sched_warmup = j.at("warmup"), sched_total = j.at("total_steps");
    std::vector<double> lrs, wall, cpu, fwd, bwd, optim;
    for (int s = 0; s < warmup + steps; s++) {
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_now();
      evaclip_group_lrs(table, sched_warmup, sched_total, s, lrs);
      opt.set_group_lrs(lrs);
      const CocaStepResult r = step.run(images.data(), text.data(), batch, 1.0);
      const double w = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s < warmup) continue;
      wall.push_back(w);
      cpu.push_back(cpu_now() - c0);
      fwd.push_back(r.forward_ms / 1e3);
      bwd.push_back((r.backward_inner_ms + r.backward_allreduce_ms) / 1e3);
      optim.push_back(r.step_ms / 1e3);
    }
    double gemm_wall = 0, gemm_cpu = 0;
    gemm_ceiling(cfg, batch, gemm_wall, gemm_cpu);
    const double med = median(wall);
    std::printf("{\"threads\": %d, \"batch\": %d, \"recompute\": %d, \"sec_per_step\": %.4f, \"cpu_sec_per_step\": %.4f, "
                "\"images_per_s\": %.4f, \"forward_s\": %.4f, \"backward_s\": %.4f, \"optimizer_s\": %.4f, "
                "\"gemm_gflops\": %.2f, \"gemm_gflops_per_cpu_s\": %.2f}\n",
                omp_get_max_threads(), batch, recompute, med, median(cpu), batch / med, median(fwd), median(bwd),
                median(optim), gemm_wall, gemm_cpu);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
