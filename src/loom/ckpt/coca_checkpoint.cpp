#include "loom/ckpt/coca_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <vector>

#include "loom/ckpt/coca_state.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/data/files.h"
#include "loom/dist/communicator.h"
#include "loom/models/coca/coca_model.h"
#include "loom/optim/adamw.h"
#include "loom/util/tmp_cleanup.h"

namespace loom {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The shape fields a checkpoint must match (every one changes which parameters exist or what they mean).
json shape_json(const CocaConfig& c) {
  return {{"image_size", c.vision.image_size},
          {"patch_size", c.vision.patch_size},
          {"vision_width", c.vision.width},
          {"vision_layers", c.vision.layers},
          {"vision_heads", c.vision.heads},
          {"vision_mlp_hidden", c.vision.mlp_hidden},
          {"rope_pt_grid", c.vision.rope_pt_grid},
          {"text_width", c.text.width},
          {"text_layers", c.text.layers},
          {"text_heads", c.text.heads},
          {"text_mlp_hidden", c.text.mlp_hidden},
          {"text_context_length", c.text.context_length},
          {"text_vocab_size", c.text.vocab_size},
          {"decoder_layers", c.decoder.layers},
          {"pooler_queries", c.pooler.queries},
          {"pooler_heads", c.pooler.heads},
          {"embed_dim", c.embed_dim}};
}

// One flat-layout vector (ParamStore offsets) as full tensors under `prefix` + name.
std::vector<TensorEntry> entries(const ParamStore& ps, const std::vector<float>& flat, const std::string& prefix,
                                 std::vector<std::string>& names) {
  std::vector<TensorEntry> out;
  names.reserve(names.size() + ps.all().size());
  for (const Param& p : ps.all()) {
    names.push_back(prefix + p.name);
    out.push_back({names.back(), DType::F32, p.shape, flat.data() + p.offset, size_t(p.numel()) * sizeof(float)});
  }
  return out;
}

}  // namespace

std::string resolve_coca_checkpoint(const std::string& path) {
  std::error_code ec;
  if (fs::exists(fs::path(path) / "state.json", ec)) return path;
  const fs::path latest = fs::path(path) / "latest";
  if (fs::exists(latest, ec)) {
    std::string tag = data::read_whole_file(latest.string(), "checkpoint tag file");
    while (!tag.empty() && (tag.back() == '\n' || tag.back() == ' ')) tag.pop_back();
    return (fs::path(path) / tag).string();
  }
  return "";
}

void save_coca_checkpoint(const std::string& checkpoints_dir, const std::string& tag, CocaModel& model,
                          AdamW& optimizer, const CocaTrainState& state, dist::Communicator& world) {
  ParamStore& ps = model.params();
  // Collectives first, on every rank: the fp32 weights the optimizer updates and the full moments.
  std::vector<float> w, m, v;
  optimizer.gather_weights(w);
  optimizer.gather_state(m, v);
  if (world.rank() == 0) {
    const std::string dir = (fs::path(checkpoints_dir) / tag).string(), tmp = dir + ".tmp";
    TmpRegistration cleanup(tmp, true);  // removed if a signal ends the process mid-save
    try {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      fs::create_directories(tmp, ec);
      if (ec) fail("cannot create checkpoint directory " + tmp + ": " + ec.message());
      std::vector<std::string> names;
      const uint32_t model_crc =
          write_safetensors((fs::path(tmp) / "model.safetensors").string(), entries(ps, w, "", names));
      std::vector<std::string> onames;
      std::vector<TensorEntry> opt = entries(ps, m, "exp_avg.", onames);
      for (auto& e : entries(ps, v, "exp_avg_sq.", onames)) opt.push_back(e);
      const uint32_t opt_crc = write_safetensors((fs::path(tmp) / "optimizer.safetensors").string(), opt);
      json s;
      s["format"] = "loom-coca-checkpoint";
      s["version"] = kCocaCheckpointFormatVersion;
      s["epoch"] = state.epoch;
      s["step"] = state.step;
    s["batch_in_epoch"] = state.batch_in_epoch;
      s["optimizer_steps"] = state.optimizer_steps;
      if (state.has_scaler)
        s["loss_scaler"] = {{"scale", state.scaler.scale},
                            {"growth_tracker", state.scaler.growth_tracker},
                            {"hysteresis_tracker", state.scaler.hysteresis_tracker}};
      s["loader"] = state.loader;
      s["shape"] = shape_json(model.config());
      s["files"] = {
          {"model.safetensors", {{"crc32", model_crc}, {"bytes", fs::file_size(fs::path(tmp) / "model.safetensors")}}},
          {"optimizer.safetensors",
           {{"crc32", opt_crc}, {"bytes", fs::file_size(fs::path(tmp) / "optimizer.safetensors")}}}};
      write_file_atomic((fs::path(tmp) / "state.json").string(), s.dump(1));
      fs::remove_all(dir, ec);
      fs::rename(tmp, dir, ec);
      if (ec) fail("cannot commit checkpoint " + dir + ": " + ec.message());
      write_file_atomic((fs::path(checkpoints_dir) / "latest").string(), tag + "\n");
    } catch (const std::exception& e) {
      // The other ranks wait in the barrier below: end them all with the one message.
      std::error_code ec;
      fs::remove_all(tmp, ec);
      dist::exit_after_error(std::string("saving checkpoint ") + dir + ": " + e.what(), 1);
    }
  }
  world.barrier();
}

CocaTrainState load_coca_checkpoint(const std::string& path, CocaModel& model, AdamW* optimizer) {
  const std::string dir = resolve_coca_checkpoint(path);
  if (dir.empty()) fail("no CoCa checkpoint at " + path + " (no state.json and no 'latest' file)");
  CocaTrainState st = read_coca_state(dir, shape_json(model.config()));

  ParamStore& ps = model.params();
  const SafetensorsFile weights((fs::path(dir) / "model.safetensors").string());
  auto read = [&](const SafetensorsFile& f, const std::string& name, const Param& p, float* dst) {
    const TensorEntry& t = f.get(name);
    if (t.dtype != DType::F32 || t.shape != p.shape)
      fail(f.path() + ": tensor " + name + " has another type or shape than this model's");
    std::memcpy(dst, t.data, t.bytes);
  };
  ps.acquire_full();
  for (Param& p : ps.all()) read(weights, p.name, p, p.value.f32());
  if (optimizer) optimizer->reset_main_weights();  // mixed precision: keep the fp32 main weights exactly
  ps.commit_full();
  ps.release_full();

  if (optimizer) {
    const SafetensorsFile opt((fs::path(dir) / "optimizer.safetensors").string());
    std::vector<float> m(size_t(ps.numel()), 0.f), v(size_t(ps.numel()), 0.f);
    for (const Param& p : ps.all()) {
      read(opt, "exp_avg." + p.name, p, m.data() + p.offset);
      read(opt, "exp_avg_sq." + p.name, p, v.data() + p.offset);
    }
    optimizer->set_state(m.data(), v.data());
    optimizer->set_steps(st.optimizer_steps);
  }
  return st;
}

}  // namespace loom
