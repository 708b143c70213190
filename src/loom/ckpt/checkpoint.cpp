#include "loom/ckpt/checkpoint.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/checkpoint_reader.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/data/files.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/process_grid.h"
#include "loom/util/tmp_cleanup.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace loom {

namespace {

constexpr int kFormatVersion = 1;

std::string shard_name(int tp, int pp) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "shard_tp%02d_pp%03d", tp, pp);
  return buf;
}

struct TensorRecord {
  std::string key;  // model/<name>, optim/exp_avg/<name>, optim/exp_avg_sq/<name>
  std::vector<int64_t> global_shape, shape;
  int dim;
  int64_t offset;
};

}  // namespace

struct CheckpointSaver::Pending {
  TrainState state;
  SaveOptions opt;
  bool sgd = false;              // the optimizer state is SGD's momentum buffer
  bool writer = false;           // this rank writes a shard
  std::string shard;             // file stem
  std::vector<std::vector<float>> copies;
  std::vector<TensorRecord> records;
  bool written = false;
  TmpRegistration tmp_dir;  // DIR/iter_N.tmp goes if a signal ends the process before the commit
};

namespace {

// What a killed save leaves in DIR: iter_NNNNNNN.tmp directories (Loom's own name, seven or more digits) and
// write_file_atomic's latest_checkpointed_iteration.txt.tmp.<pid> of a process no longer alive.
void remove_stale_save_leftovers(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool iter_tmp = name.size() >= 16 && name.compare(0, 5, "iter_") == 0 &&
                          name.compare(name.size() - 4, 4, ".tmp") == 0 &&
                          name.find_first_not_of("0123456789", 5) == name.size() - 4;
    if (iter_tmp && entry.is_directory(ec)) fs::remove_all(entry.path(), ec);
  }
  remove_stale_tmp_files(dir, "latest_checkpointed_iteration.txt");
}

// A failed save removes its partial directory (with the shards other ranks finished) before ending the job.
[[noreturn]] void abort_save(const std::string& tmp, const std::string& message) {
  std::error_code ec;
  fs::remove_all(tmp, ec);
  dist::abort_job(message);
}

}  // namespace

CheckpointSaver::CheckpointSaver(std::string dir, const parallel::ProcessGrid& grid) : dir_(std::move(dir)), grid_(grid) {
  if (grid_.world()->rank() == 0) remove_stale_save_leftovers(dir_);
}

CheckpointSaver::~CheckpointSaver() {
  if (writer_.joinable()) writer_.join();
}

void CheckpointSaver::save(const TrainState& state, const std::vector<const DecoderModel*>& chunks,
                           const std::vector<const AdamW*>& optimizers, const SaveOptions& opt) {
  finish();
  auto p = std::make_unique<Pending>();
  p->state = state;
  p->opt = opt;
  // Without a sharded optimizer every data-parallel replica holds the same state: replica 0 writes.
  p->writer = grid_.dp_rank() == 0 && grid_.cp_rank() == 0;
  p->shard = shard_name(grid_.tp_rank(), grid_.pp_rank());
  // The full optimizer moments of each chunk (all-gathered when ZeRO shards them: a collective).
  std::vector<std::vector<float>> ms(chunks.size()), vs(chunks.size()), mains(chunks.size());
  for (size_t c = 0; c < chunks.size() && c < optimizers.size(); c++) {
    if (!optimizers[c]) continue;
    AdamW* o = const_cast<AdamW*>(optimizers[c]);
    p->sgd = !o->has_second_moment();
    if (opt.save_optim) o->gather_state(ms[c], vs[c]);
    // Mixed precision: the fp32 main weights are the model to save (the half weights are their rounding);
    // ZeRO-3: the weights exist only as slices. Either way the optimizer gathers them.
    if (!chunks[c]->params().values_direct()) o->gather_weights(mains[c]);
  }
  if (p->writer) {
    auto add = [&](const std::string& key, const Param& prm, const float* data) {
      p->copies.emplace_back(data, data + prm.numel());
      p->records.push_back({key, prm.global_shape(), prm.shape, prm.split.dim, prm.split.offset});
    };
    for (size_t c = 0; c < chunks.size(); c++) {
      const bool with_optim = opt.save_optim && !ms[c].empty();
      for (const auto& prm : chunks[c]->params().all()) {
        // A tensor-parallel replica is written by tensor-parallel rank 0 only.
        if (prm.tp_replicated() && grid_.tp_rank() != 0) continue;
        if (!prm.split.tied_to.empty()) continue;  // the first stage saves the tied word embedding
        add("model/" + prm.name, prm, mains[c].empty() ? prm.value.f32() : mains[c].data() + prm.offset);
        if (with_optim && p->sgd) {
          add("optim/momentum_buffer/" + prm.name, prm, ms[c].data() + prm.offset);
        } else if (with_optim) {
          add("optim/exp_avg/" + prm.name, prm, ms[c].data() + prm.offset);
          add("optim/exp_avg_sq/" + prm.name, prm, vs[c].data() + prm.offset);
        }
      }
    }
  }
  const std::string it = iteration_dir(dir_, state.iteration), tmp = it + ".tmp";
  auto world = grid_.world();
  if (world->rank() == 0) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) abort_save(tmp, "cannot create checkpoint directory " + tmp + ": " + ec.message());
  }
  if (world->rank() == 0 || p->writer) p->tmp_dir = TmpRegistration(tmp, true);
  world->barrier();
  pending_ = std::move(p);
  if (opt.async) {
    writer_ = std::thread([this] { write_and_commit(*pending_); });
  } else {
    write_and_commit(*pending_);
    finish();
  }
}

// Writes this rank's shard and a small JSON beside it (tensor map and CRC); no collectives here, so it
// may run on a background thread.
void CheckpointSaver::write_and_commit(Pending& p) {
  if (!p.writer) {
    p.written = true;
    return;
  }
  const std::string tmp = iteration_dir(dir_, p.state.iteration) + ".tmp";
  try {
    std::vector<TensorEntry> entries;
    for (size_t i = 0; i < p.records.size(); i++)
      entries.push_back({p.records[i].key, DType::F32, p.records[i].shape, p.copies[i].data(), p.copies[i].size() * 4});
    const std::string file = p.shard + ".safetensors";
    // Test hook: stretch the write so a test can kill the job in the middle of a save.
    if (const char* delay = std::getenv("LOOM_TEST_CHECKPOINT_DELAY_MS"))
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
    const uint32_t crc = write_safetensors((fs::path(tmp) / file).string(), entries);
    json side;
    side["file"] = file;
    side["crc32"] = crc;
    side["tensors"] = json::array();
    for (const auto& r : p.records)
      side["tensors"].push_back({{"key", r.key}, {"global_shape", r.global_shape}, {"shape", r.shape}, {"dim", r.dim},
                                 {"offset", r.offset}});
    write_file_atomic((fs::path(tmp) / (p.shard + ".json")).string(), side.dump());
  } catch (const std::exception& e) {
    abort_save(tmp, std::string("saving checkpoint: ") + e.what());
  }
  p.written = true;
}

void CheckpointSaver::finish() {
  if (!pending_) return;
  if (writer_.joinable()) writer_.join();
  Pending& p = *pending_;
  auto world = grid_.world();
  world->barrier();  // every shard is on disk
  if (world->rank() == 0) {
    const std::string it = iteration_dir(dir_, p.state.iteration), tmp = it + ".tmp";
    try {
      json meta;
      meta["format"] = "loom-checkpoint";
      meta["version"] = kFormatVersion;
      meta["iteration"] = p.state.iteration;
      meta["consumed_train_samples"] = p.state.consumed_train_samples;
      meta["consumed_valid_samples"] = p.state.consumed_valid_samples;
      meta["skipped_train_samples"] = p.state.skipped_train_samples;
      meta["scheduler_steps"] = p.state.scheduler_steps;
      meta["optimizer_steps"] = p.state.optimizer_steps;
      meta["has_optimizer"] = p.opt.save_optim;
      if (p.sgd) meta["optimizer"] = "sgd";
      if (p.state.has_lr_schedule) {
        const LrSchedule& ls = p.state.lr_schedule;
        meta["lr_scheduler"] = {{"max_lr", ls.max_lr},           {"min_lr", ls.min_lr},
                                {"warmup_steps", ls.warmup_steps}, {"decay_steps", ls.decay_steps},
                                {"decay_style", ls.style},         {"init_lr", ls.init_lr}};
      }
      if (p.state.has_scaler)
        meta["grad_scaler"] = {{"scale", p.state.scaler.scale},
                               {"growth_tracker", p.state.scaler.growth_tracker},
                               {"hysteresis_tracker", p.state.scaler.hysteresis_tracker}};
      meta["layout"] = {{"tensor_model_parallel_size", grid_.tp_size()},
                        {"pipeline_model_parallel_size", grid_.pp_size()},
                        {"data_parallel_size", grid_.dp_size()}};
      meta["args"] = p.opt.info;
      json files = json::object(), tensors = json::object();
      for (const auto& entry : fs::directory_iterator(tmp)) {
        if (entry.path().extension() != ".json") continue;
        json side = json::parse(data::read_whole_file(entry.path().string(), "checkpoint shard record"));
        const std::string file = side["file"];
        // The CRC was computed over the bytes as they were written (and fsync'ed); loading verifies it.
        files[file] = {{"crc32", side["crc32"].get<uint32_t>()}, {"bytes", fs::file_size(fs::path(tmp) / file)}};
        for (const auto& t : side["tensors"]) {
          json& rec = tensors[t["key"].get<std::string>()];
          rec["global_shape"] = t["global_shape"];
          rec["shards"].push_back({{"file", file}, {"shape", t["shape"]}, {"dim", t["dim"]}, {"offset", t["offset"]}});
        }
        fs::remove(entry.path());
      }
      meta["files"] = files;
      meta["tensors"] = tensors;
      write_file_atomic((fs::path(tmp) / "metadata.json").string(), meta.dump(1));
      std::error_code ec;
      fs::remove_all(it, ec);  // an older save of the same iteration
      fs::rename(tmp, it);
      write_file_atomic((fs::path(dir_) / "latest_checkpointed_iteration.txt").string(),
                        std::to_string(p.state.iteration));
      std::printf("  successfully saved checkpoint from iteration %7lld to %s\n", (long long)p.state.iteration,
                  dir_.c_str());
      std::fflush(stdout);
    } catch (const std::exception& e) {
      abort_save(tmp, std::string("committing checkpoint: ") + e.what());
    }
  }
  world->barrier();
  pending_.reset();
}

TrainState load_checkpoint(const std::string& dir, const std::vector<DecoderModel*>& chunks,
                           const std::vector<AdamW*>& optimizers, const LoadOptions& opt) {
  CheckpointReader reader(checkpoint_iteration_dir(dir));
  const json& meta = reader.meta();
  const std::string& meta_path = reader.meta_path();
  try {
    if (meta.at("format") != "loom-checkpoint" || meta.at("version").get<int>() != kFormatVersion)
      fail(meta_path + ": not a loom checkpoint of format version " + std::to_string(kFormatVersion));
    // The model this run builds must be the one trained: what no tensor shape shows (heads, norm, RoPE...)
    // and what it does (layers, widths) are compared field by field, so the message names the flag.
    std::map<std::string, std::string> args;
    if (meta.contains("args")) args = meta["args"].get<std::map<std::string, std::string>>();
    if (!chunks.empty()) {
      const ModelDifference d = model_difference(args, chunks[0]->config());
      if (!d.flag.empty())
        fail("checkpoint " + dir + " was trained with " + d.flag + " " + d.recorded + ", this run has " + d.current +
             " (give the flags it was trained with; its metadata.json lists them under \"args\")");
    }
    // The vocabulary-sized tensors are padded to make_vocab_size_divisible_by x TP, so another TP pads
    // them to another row count. As Megatron's checkpoint converters do, the tokenizer's rows carry over
    // (weights and optimizer moments) and the padding rows of the new size start at zero.
    int64_t vocab = -1;
    if (auto v = args.find("vocab_size"); v != args.end() && !chunks.empty() &&
                                          std::to_string(chunks[0]->config().vocab_size) == v->second)
      vocab = chunks[0]->config().vocab_size;
    auto vocab_sized = [](const std::string& key) {
      auto ends = [&](const std::string& s) {
        return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0;
      };
      return ends("/embedding.word_embeddings.weight") || ends("/output_layer.weight");
    };
    // Fill this rank's slice of tensor `key` from every stored slice that overlaps it.
    auto read = [&](const std::string& key, const Param& p, float* dst) {
      reader.read(key, p.global_shape(), p.split.dim, p.split.offset, p.shape, dst,
                  vocab > 0 && vocab_sized(key) ? vocab : -1);
    };
    for (size_t c = 0; c < chunks.size(); c++) {
      ParamStore& ps = chunks[c]->params();
      ps.acquire_full();  // fp32 views of every weight (half-precision or sharded storage)
      for (auto& p : ps.all()) read("model/" + p.canonical_name(), p, p.value.f32());
      // Mixed precision: the checkpoint holds the fp32 main weights; keep them exactly.
      if (c < optimizers.size() && optimizers[c]) optimizers[c]->reset_main_weights();
      ps.commit_full();
      ps.release_full();
    }
    TrainState s;
    const bool load_optim = opt.load_optim && !opt.finetune && !optimizers.empty() && optimizers[0];
    if (load_optim) {
      if (!meta.at("has_optimizer").get<bool>())
        fail(meta_path + ": the checkpoint was saved without optimizer state (use --no-load-optim or --finetune)");
      // SGD's momentum buffer and Adam's/LAMB's two moments are different states.
      const bool saved_sgd = meta.value("optimizer", "") == "sgd", sgd = !optimizers[0]->has_second_moment();
      if (saved_sgd != sgd)
        fail("checkpoint " + dir + " holds the " + (saved_sgd ? "SGD optimizer's momentum buffer" : "moments of Adam or LAMB") +
             ", this run has --optimizer " + (sgd ? "sgd" : "adam or lamb") +
             " (give the optimizer it was trained with, or --no-load-optim)");
      for (size_t c = 0; c < chunks.size(); c++) {
        std::vector<float> m(size_t(chunks[c]->params().numel()), 0.f), v(sgd ? 0 : m.size(), 0.f);
        for (auto& p : chunks[c]->params().all()) {
          if (sgd) {
            read("optim/momentum_buffer/" + p.canonical_name(), p, m.data() + p.offset);
            continue;
          }
          read("optim/exp_avg/" + p.canonical_name(), p, m.data() + p.offset);
          read("optim/exp_avg_sq/" + p.canonical_name(), p, v.data() + p.offset);
        }
        optimizers[c]->set_state(m.data(), sgd ? nullptr : v.data());
      }
    }
    if (!opt.finetune) {
      s.iteration = meta.at("iteration");
      s.consumed_train_samples = meta.at("consumed_train_samples");
      s.consumed_valid_samples = meta.at("consumed_valid_samples");
      s.skipped_train_samples = meta.value("skipped_train_samples", int64_t(0));  // older checkpoints: none
      s.scheduler_steps = meta.at("scheduler_steps");
      s.optimizer_steps = load_optim ? meta.at("optimizer_steps").get<int64_t>() : 0;
      if (meta.contains("lr_scheduler")) {
        const json& l = meta["lr_scheduler"];
        s.has_lr_schedule = true;
        s.lr_schedule.max_lr = l.at("max_lr").get<double>();
        s.lr_schedule.min_lr = l.at("min_lr").get<double>();
        s.lr_schedule.warmup_steps = l.at("warmup_steps").get<double>();
        s.lr_schedule.decay_steps = l.at("decay_steps").get<int64_t>();
        s.lr_schedule.style = l.at("decay_style").get<std::string>();
        s.lr_schedule.init_lr = l.value("init_lr", 0.0);
      }
      if (meta.contains("grad_scaler")) {
        s.has_scaler = true;
        s.scaler.scale = meta["grad_scaler"].at("scale").get<float>();
        s.scaler.growth_tracker = meta["grad_scaler"].at("growth_tracker").get<int64_t>();
        s.scaler.hysteresis_tracker = meta["grad_scaler"].at("hysteresis_tracker").get<int64_t>();
      }
    }
    return s;
  } catch (const json::exception& e) {
    fail(meta_path + ": malformed checkpoint metadata: " + e.what());
  }
}

}  // namespace loom
