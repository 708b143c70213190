// CoCa-B/16's text tower + caption decoder, forward and backward, on random ids (CLIP's SOT/EOT, pad 0)
// and random image tokens: seconds per iteration (best of N after a warm-up). bench/coca_text.sh runs it
// beside the PyTorch reference (bench/coca_text_torch.py).
//   coca_text_bench <batch> <iterations> [recompute]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/rng.h"
#include "loom/layers/param_store.h"
#include "loom/models/coca/clip_text.h"
#include "loom/models/coca/coca_config.h"
#include "loom/models/coca/multimodal_decoder.h"

using namespace loom;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: coca_text_bench <batch> <iterations> [recompute]\n");
    return 2;
  }
  const int B = std::stoi(argv[1]), iters = std::stoi(argv[2]);
  const bool recompute = argc > 3 && std::string(argv[3]) == "recompute";
  const CocaConfig cfg = coca_b16_config();
  ParamStore store;
  ClipTextTower text(cfg, store, B, recompute);
  MultimodalDecoder dec(cfg, store, B, recompute);
  auto units = text.units();
  dec.set_first_unit(int(units.size()));
  for (auto& u : dec.units()) units.push_back(u);
  store.finalize(16, units);
  text.init_params(1);
  dec.init_params(1);
  const int ctx = cfg.text.context_length, E = cfg.embed_dim, Q = cfg.pooler.queries;
  Rng rng(7);
  std::vector<int32_t> ids(size_t(B) * ctx, 0);
  for (int b = 0; b < B; b++) {
    const int len = 20 + (b * 13) % 50;
    ids[size_t(b) * ctx] = 49406;
    for (int t = 1; t + 1 < len; t++) ids[size_t(b) * ctx + t] = 1 + int(rng.next_u32() % 49000u);
    ids[size_t(b) * ctx + len - 1] = 49407;
  }
  std::vector<float> image(size_t(B) * Q * E), dlatent(size_t(B) * E);
  for (float& v : image) v = rng.normal();
  for (float& v : dlatent) v = 0.01f * rng.normal();
  // Wall time, and the process's CPU time (on a loaded machine with one thread, the fairer of the two).
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  double best = 1e30, best_cpu = 1e30;
  for (int it = 0; it <= iters; it++) {  // iteration 0 warms up
    store.zero_grads();
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_now();
    text.forward(ids.data(), B);
    const double c1 = cpu_now();
    const double loss = dec.forward(text.tokens(), ids.data(), image.data(), B, nullptr, 2.f);  // scale known: fused head
    const double c2 = cpu_now();
    dec.backward(2.f);
    const double c3 = cpu_now();
    text.backward(dlatent.data(), dec.d_text_tokens());
    if (it > 0)
      std::printf("cpu s: text fwd %.3f, decoder fwd %.3f, decoder bwd %.3f, text bwd %.3f\n", c1 - c0, c2 - c1, c3 - c2,
                  cpu_now() - c3);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double c = cpu_now() - c0;
    if (it > 0) best = std::min(best, s), best_cpu = std::min(best_cpu, c);
    if (it == 0) std::printf("loss %.4f\n", loss);
  }
  std::printf("loom text+decoder fwd+bwd batch %d%s: %.4f s/iter wall, %.4f s/iter cpu (best of %d)\n", B,
              recompute ? " recompute" : "", best, best_cpu, iters);
  return 0;
}
