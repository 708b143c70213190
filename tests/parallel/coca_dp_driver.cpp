// Trains a small CoCa for a few steps under whatever data-parallel layout mpirun and the flags give
// (ZeRO stage 0-2, fp32 or fp16 storage, AdamW or LAMB) on a synthetic global batch, each rank taking its
// slice, and writes what must not depend on the layout: every step's global-batch losses (the mean of the
// ranks' local losses: the one-process loss of the whole batch), the gradient norm, and the final weights.
// test_coca_dp.sh compares every layout with one process.
//   mpirun -np 4 coca_dp_driver --zero 1 --iters 4 --out out.safetensors
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "loom/ckpt/safetensors.h"
#include "loom/core/rng.h"
#include "loom/dist/communicator.h"
#include "loom/models/coca/coca_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/loss_scaler.h"
#include "loom/train/coca_step.h"

using namespace loom;

int main(int argc, char** argv) {
  int zero = 0, iters = 4, global_batch = 8, lamb = 0, recompute = 0;
  std::string precision = "fp32", out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--zero") zero = std::atoi(argv[i + 1]);
    else if (a == "--iters") iters = std::atoi(argv[i + 1]);
    else if (a == "--global-batch") global_batch = std::atoi(argv[i + 1]);
    else if (a == "--lamb") lamb = std::atoi(argv[i + 1]);
    else if (a == "--recompute") recompute = std::atoi(argv[i + 1]);
    else if (a == "--precision") precision = argv[i + 1];
    else if (a == "--out") out = argv[i + 1];
  }
  auto world = dist::Communicator::world();
  const int R = world->size(), rank = world->rank(), b = global_batch / R;

  CocaConfig c;
  c.vision = {32, 8, 64, 2, 4, 96, 1e-6f, 10000.0, 4};
  c.text.vocab_size = 64;
  c.text.context_length = 12;
  c.text.width = 32;
  c.text.layers = 2;
  c.text.heads = 4;
  c.text.mlp_hidden = 64;
  c.decoder = {2, 32, 4, 64, 1e-5f, 64};
  c.pooler.queries = 4;
  c.pooler.heads = 4;
  c.embed_dim = 32;

  ParamStorage storage;
  if (precision == "fp16") storage.weights = DType::F16;
  if (precision == "bf16") storage.weights = DType::BF16;
  if (zero >= 1) storage.zero_group = world;
  storage.shard_grads = zero >= 2;
  CocaModel model(c, b, storage, zero >= 1 ? 16 * R : 16, recompute != 0, world);
  model.init(1234);

  AdamWOptions o;
  o.weight_decay = 0.05;
  o.kind = lamb ? OptimizerKind::Lamb : OptimizerKind::AdamW;
  AdamW opt(model.params(), o);
  opt.reset_main_weights();
  std::unique_ptr<GradScaler> scaler;
  if (precision == "fp16") scaler = std::make_unique<DynamicGradScaler>(65536.0, 1.0, 2.0, 0.5, 1000, 2);
  CocaStep step(model, opt, scaler.get(), world, 1.0);

  // The global batch of step s, sample g: images N(0,1) from (s, g); captions [sot, words, eot, pad...]
  // of the same length for every sample (so each rank's mean caption loss averages to the whole batch's).
  const int S = c.vision.image_size, ctx = c.text.context_length, V = c.text.vocab_size;
  std::vector<float> images(size_t(b) * 3 * S * S);
  std::vector<int32_t> text(size_t(b) * ctx);
  std::vector<float> losses, norms;
  for (int s = 0; s < iters; ++s) {
    for (int i = 0; i < b; ++i) {
      const int g = rank * b + i;
      fill_normal(images.data() + size_t(i) * 3 * S * S, 0, 3 * S * S, stream_key(7, s, g), 1.0f);
      Rng r(stream_key(8, s, g));
      int32_t* t = text.data() + size_t(i) * ctx;
      t[0] = V - 2;  // sot
      for (int k = 1; k < ctx - 3; ++k) t[k] = 1 + int32_t(r.next_u32() % uint32_t(V - 3));
      t[ctx - 3] = V - 1;  // eot: the largest id, where the text tower pools
      t[ctx - 2] = t[ctx - 1] = 0;
    }
    const CocaStepResult res = step.run(images.data(), text.data(), b, 1e-3);
    double l[2] = {res.losses.contrastive, res.losses.caption};
    world->all_reduce(l, 2);
    losses.push_back(float(l[0] / R));
    losses.push_back(float(l[1] / R));
    norms.push_back(float(res.grad_norm));
  }

  ParamStore& ps = model.params();
  ps.acquire_full();
  std::vector<TensorEntry> entries;
  for (const Param& p : ps.all())
    entries.push_back({p.name, DType::F32, p.shape, p.value.f32(), size_t(p.numel()) * sizeof(float)});
  entries.push_back({"loss", DType::F32, {int64_t(losses.size())}, losses.data(), losses.size() * sizeof(float)});
  entries.push_back({"grad_norm", DType::F32, {int64_t(norms.size())}, norms.data(), norms.size() * sizeof(float)});
  if (rank == 0 && !out.empty()) write_safetensors(out, entries);
  ps.release_full();
  if (rank == 0)
    std::printf("contrastive %.6f caption %.6f grad_norm %.6f\n", losses[losses.size() - 2], losses.back(), norms.back());
  return 0;
}
