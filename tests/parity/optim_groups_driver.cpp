// Runs Loom's optimizer (AdamW or LAMB, apex or DeepSpeed FusedLamb arithmetic) with EVA-CLIP's
// parameter groups and warmup-cosine schedule over weights and gradients written by
// tests/parity/test_optim_groups.py, and writes what the PyTorch reference is compared against.
//
//   optim_groups_driver --config config.json --weights w.bin --grads g.bin --out out.bin --lrs lrs.txt
// config.json: {"optimizer": "adamw"|"lamb", "deepspeed": bool, "beta1", "beta2", "eps", "bias_correction",
//   "eps_inside_sqrt", "max_coeff", "min_coeff", "steps", "warmup", "total_steps", "zero": bool (optional),
//   "trust_partitions": D (optional: LAMB's trust ratio per piece of DeepSpeed's ZeRO partition of each group),
//   "params": [{"name", "shape"}], "towers": [{"tower", "prefix", "num_layers", "lr", "wd", "ld", "skip"}]}
// w.bin: float32 weights, parameters concatenated; g.bin: float32 [steps][every parameter].
// out.bin: the float32 weights after the last step; lrs.txt: per step the groups' lrs as Python's list repr,
// then one line per group "name weight_decay lr_scale size".
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/optim/adamw.h"
#include "loom/optim/param_groups.h"
#include "loom/optim/warmup_cosine.h"
#include "loom/util/cli.h"

using namespace loom;

namespace {

std::vector<float> read_floats(const std::string& path, size_t count) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open " + path);
  std::vector<float> v(count);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(count * sizeof(float)));
  if (size_t(f.gcount()) != count * sizeof(float)) fail(path + ": expected " + std::to_string(count) + " floats");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string config, weights, grads, out, lrs_path;
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string a = argv[i];
      if (a == "--config") config = argv[i + 1];
      else if (a == "--weights") weights = argv[i + 1];
      else if (a == "--grads") grads = argv[i + 1];
      else if (a == "--out") out = argv[i + 1];
      else if (a == "--lrs") lrs_path = argv[i + 1];
      else fail("unknown flag " + a);
    }
    std::ifstream cf(config);
    if (!cf) fail("cannot open " + config);
    const nlohmann::json j = nlohmann::json::parse(cf);

    std::vector<NamedShape> specs;
    for (const auto& p : j["params"]) specs.push_back({p["name"].get<std::string>(), p["shape"].get<std::vector<int64_t>>()});
    std::vector<TowerGroupSpec> towers;
    for (const auto& t : j["towers"]) {
      TowerGroupSpec s;
      s.tower = t["tower"].get<std::string>();
      s.prefix = t["prefix"].get<std::string>();
      s.num_layers = t["num_layers"].get<int>();
      s.lr = t["lr"].get<double>();
      s.weight_decay = t["wd"].get<double>();
      s.layer_decay = t["ld"].get<double>();
      s.skip = t["skip"].get<std::vector<std::string>>();
      towers.push_back(s);
    }
    const ParamGroupTable table = build_param_groups(specs, towers);

    // "zero": ZeRO-1 over every process of mpirun (each rank updates its slice of every parameter, then
    // the weights are all-gathered); only rank 0 writes the outputs.
    ParamStore store;
    auto world = dist::Communicator::world();
    if (j.value("zero", false) && world->size() > 1) {
      ParamStorage st;
      st.zero_group = world;
      store.configure(st);
    }
    for (const NamedShape& s : specs) store.add(s.name, s.shape, true);
    store.finalize();
    int64_t total = 0;
    for (const Param& p : store.all()) total += p.numel();
    const int steps = j["steps"].get<int>();
    const std::vector<float> w0 = read_floats(weights, size_t(total));
    const std::vector<float> g = read_floats(grads, size_t(total) * size_t(steps));
    {
      int64_t at = 0;
      for (Param& p : store.all()) {
        std::copy(w0.begin() + at, w0.begin() + at + p.numel(), p.value.f32());
        at += p.numel();
      }
    }

    AdamWOptions o;
    o.beta1 = j["beta1"].get<double>();
    o.beta2 = j["beta2"].get<double>();
    o.eps = j["eps"].get<double>();
    o.kind = j["optimizer"].get<std::string>() == "lamb" ? OptimizerKind::Lamb : OptimizerKind::AdamW;
    o.lamb_deepspeed = j.value("deepspeed", false);
    o.lamb_bias_correction = j.value("bias_correction", true);
    o.lamb_eps_inside_sqrt = j.value("eps_inside_sqrt", false);
    o.lamb_max_coeff = j.value("max_coeff", 10.0);
    o.lamb_min_coeff = j.value("min_coeff", 0.01);
    AdamW opt(store, o);
    std::vector<double> group_wd;
    for (const ParamGroup& pg : table.groups) group_wd.push_back(pg.weight_decay);
    opt.set_param_groups(table.group_of_param, group_wd);
    if (j.value("trust_partitions", 0) > 0) opt.set_trust_ratio_partitions(j["trust_partitions"].get<int>());

    std::string lrs_text;
    std::vector<double> lrs;
    const int64_t warmup = j["warmup"].get<int64_t>(), total_steps = j["total_steps"].get<int64_t>();
    for (int step = 0; step < steps; step++) {
      // EVA-CLIP: the scheduler sets every group's lr before the step's forward.
      evaclip_group_lrs(table, warmup, total_steps, step, lrs);
      opt.set_group_lrs(lrs);
      lrs_text += python_float_list(lrs) + "\n";
      int64_t at = size_t(step) * size_t(total);
      for (Param& p : store.all()) {
        std::copy(g.begin() + at, g.begin() + at + p.numel(), p.grad.f32());
        at += p.numel();
      }
      opt.step(1.0);
    }
    for (const ParamGroup& pg : table.groups)
      lrs_text += pg.name + " " + python_float(pg.weight_decay) + " " + python_float(pg.lr_scale) + " " +
                  std::to_string(pg.params.size()) + "\n";

    if (world->rank() != 0) return 0;
    std::ofstream of(out, std::ios::binary);
    for (const Param& p : store.all())
      of.write(reinterpret_cast<const char*>(p.value.f32()), std::streamsize(p.numel() * int64_t(sizeof(float))));
    std::ofstream lf(lrs_path);
    lf << lrs_text;
    if (!of || !lf) fail("cannot write the outputs");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "optim_groups_driver: %s\n", e.what());
    return 2;
  }
}
