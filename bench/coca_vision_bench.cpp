// Loom's CoCa vision tower (EvaVisionTower: EVA-02 ViT + attentional poolers), forward + backward on
// random normalised images, timed per step (parameter-gradient zeroing included): the median wall time and
// process CPU time (all threads) of the timed steps. Prints one JSON line.
//   coca_vision_bench [--batch 8] [--steps 3] [--warmup 1] [--recompute 0|1] [--image-size 224]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <string>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/models/coca/eva_vision.h"

int main(int argc, char** argv) {
  int batch = 8, steps = 3, warmup = 1, recompute = 0, image = 224;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--batch") batch = v;
    else if (a == "--steps") steps = v;
    else if (a == "--warmup") warmup = v;
    else if (a == "--recompute") recompute = v;
    else if (a == "--image-size") image = v;
    else {
      std::fprintf(stderr, "loom: error: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  using namespace loom;
  CocaConfig cfg = coca_b16_config();
  cfg.vision.image_size = image;
  ParamStore store;
  EvaVisionTower tower(cfg, store, batch, recompute != 0);
  store.finalize(16, tower.units());
  tower.init_params(1);
  const int S = image, E = cfg.embed_dim, Q = cfg.pooler.queries;
  std::vector<float> img(size_t(batch) * 3 * S * S), dl(size_t(batch) * E), dt(size_t(batch) * Q * E);
  fill_normal(img.data(), 0, int64_t(img.size()), 1, 1.0f);
  fill_normal(dl.data(), 0, int64_t(dl.size()), 2, 1.0f);
  fill_normal(dt.data(), 0, int64_t(dt.size()), 3, 1.0f);
  std::vector<double> times, cpu;
  for (int s = 0; s < warmup + steps; s++) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    store.zero_grads();
    tower.forward(img.data(), batch);
    tower.backward(dl.data(), dt.data());
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= warmup) times.push_back(sec), cpu.push_back(double(std::clock() - c0) / CLOCKS_PER_SEC);
  }
  std::sort(times.begin(), times.end());
  std::sort(cpu.begin(), cpu.end());
  const double med = times[times.size() / 2], cpu_med = cpu[cpu.size() / 2];
  // Matrix-multiply FLOPs of one image's forward (x3 for forward + backward): per block the q/k/v/proj
  // and SwiGLU GEMMs and the two attention products; the patch GEMM; both poolers.
  const double T = cfg.vision.tokens(), W = cfg.vision.width, F = cfg.vision.mlp_hidden, Np = cfg.vision.num_patches();
  const double K = 3.0 * cfg.vision.patch_size * cfg.vision.patch_size, Qd = Q, Ed = E;
  double fwd = cfg.vision.layers * (T * (8 * W * W + 6 * W * F) + 4 * T * T * W) + 2 * Np * K * W;
  fwd += 2 * T * W * Ed * 2 + 2 * Qd * Ed * Ed * 2 + 4 * Qd * T * Ed;  // attn_pool: k/v, q/out, attention
  fwd += 2 * Qd * Ed * Ed * 2 + 2 * Ed * Ed * 2 + 4 * Qd * Ed + 2 * Ed * Ed;  // attn_pool_contrastive, proj
  // The GEMM ceiling in the same process and units: the tower's commonest GEMM shape (the q/k/v projections,
  // rows B*T x 3W x W), its best rate per wall-second and per CPU-second over 3 repetitions.
  double gemm_cpu = 0, gemm_wall = 0;
  {
    const int M = batch * cfg.vision.tokens(), Wd = cfg.vision.width;
    std::vector<float> a(size_t(M) * Wd, 0.5f), b(size_t(3) * Wd * Wd, 0.25f), c(size_t(M) * 3 * Wd);
    const double flop = 2.0 * M * 3 * Wd * double(Wd);
    for (int r = 0; r < 4; r++) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      cpu::gemm(false, true, M, 3 * Wd, Wd, 1.f, a.data(), Wd, b.data(), Wd, 0.f, c.data(), 3 * Wd);
      const double w = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cs = double(std::clock() - c0) / CLOCKS_PER_SEC;
      if (r == 0) continue;  // warm-up
      gemm_wall = std::max(gemm_wall, flop / w / 1e9);
      if (cs > 0) gemm_cpu = std::max(gemm_cpu, flop / cs / 1e9);
    }
  }
  std::printf("{\"threads\": %d, \"batch\": %d, \"recompute\": %d, \"sec_per_step\": %.4f, \"cpu_sec_per_step\": %.4f, "
              "\"images_per_s\": %.4f, \"gflop_per_image\": %.3f, \"gflops\": %.2f, "
              "\"gemm_gflops\": %.2f, \"gemm_gflops_per_cpu_s\": %.2f}\n",
              omp_get_max_threads(), batch, recompute, med, cpu_med, batch / med, 3 * fwd / 1e9,
              3 * fwd * batch / med / 1e9, gemm_wall, gemm_cpu);
  return 0;
}
