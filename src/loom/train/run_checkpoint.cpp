#include "loom/train/run_checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "loom/ckpt/model_weights.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/loss_scaler.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/train/arguments.h"
#include "loom/train/run_logging.h"
#include "loom/train/timers.h"

namespace loom {

namespace {

// The "args" recorded with the weights: the model's shape, the tokenizer files, the training position.
std::map<std::string, std::string> weights_metadata(const ModelConfig& cfg, const TrainArgs& a, int64_t iteration,
                                                    int64_t consumed) {
  auto meta = model_config_metadata(cfg);
  meta["model"] = a.model;
  meta["tokenizer_type"] = a.tokenizer_type;
  for (const auto& [key, path] : {std::pair{"vocab_file", &a.vocab_file}, std::pair{"merge_file", &a.merge_file},
                                  std::pair{"tokenizer_model", &a.tokenizer_model}})
    if (!path->empty()) meta[key] = std::filesystem::absolute(*path).string();
  meta["iteration"] = std::to_string(iteration);
  meta["consumed_train_samples"] = std::to_string(consumed);
  return meta;
}

}  // namespace

TrainState initialize_or_load(const TrainArgs& a, const std::vector<DecoderModel*>& chunks,
                              const std::vector<AdamW*>& opts, const RankPrinter& out) {
  TrainState resumed;
  if (a.load.empty()) {
    for (DecoderModel* m : chunks) m->init(uint64_t(a.seed));
    for (AdamW* o : opts) o->reset_main_weights();
  } else if (std::filesystem::is_regular_file(a.load)) {  // pretrained weights (e.g. loom convert output)
    out.print_rank_0(" loading weights from " + a.load);
    for (size_t c = 0; c < chunks.size(); c++) {
      ParamStore& ps = chunks[c]->params();
      ps.acquire_full();
      load_weights(a.load, ps, &chunks[c]->config());  // any layout: slices, re-padded vocabulary, architecture checked
      opts[c]->reset_main_weights();  // from the fp32 values just read
      ps.commit_full();
      ps.release_full();
    }
  } else {
    const std::string it = checkpoint_iteration_dir(a.load);
    out.print_rank_0(" loading checkpoint from " + a.load + " (" + it + ")");
    resumed = load_checkpoint(a.load, chunks, opts, {!a.no_load_optim, a.finetune});
    for (AdamW* o : opts) o->set_steps(resumed.optimizer_steps);
    char line[160];
    std::snprintf(line, sizeof line, "  successfully loaded checkpoint from %s at iteration %lld", a.load.c_str(),
                  (long long)resumed.iteration);
    out.print_rank_0(line);
  }
  return resumed;
}

RunCheckpointer::RunCheckpointer(const TrainArgs& a, const ModelConfig& cfg, const parallel::ProcessGrid& grid)
    : a_(a), cfg_(cfg) {
  if (!a.save.empty()) saver_ = std::make_unique<CheckpointSaver>(a.save, grid);
}

RunCheckpointer::~RunCheckpointer() = default;

void RunCheckpointer::save(const RunProgress& progress, const std::vector<DecoderModel*>& chunks,
                           const std::vector<AdamW*>& opts, const LrScheduler& scheduler, const GradScaler* scaler,
                           Timers& timers, const RankPrinter& out) {
  if (!saver_ || last_saved_ == progress.iteration) return;
  char line[64];
  std::snprintf(line, sizeof line, "saving checkpoint at iteration %7lld to ", (long long)progress.iteration);
  out.print_rank_0(line + a_.save);
  SaveOptions so;
  so.save_optim = !a_.no_save_optim;
  so.async = a_.async_save;
  so.info = weights_metadata(cfg_, a_, progress.iteration, progress.consumed_train_samples);
  TimerScope t(timers, "save-checkpoint");
  std::vector<const DecoderModel*> cm(chunks.begin(), chunks.end());
  std::vector<const AdamW*> co(opts.begin(), opts.end());
  TrainState st;
  st.iteration = progress.iteration;
  st.consumed_train_samples = progress.consumed_train_samples;
  st.consumed_valid_samples = progress.consumed_valid_samples;
  st.skipped_train_samples = progress.skipped_train_samples;
  st.scheduler_steps = scheduler.num_steps();
  st.optimizer_steps = opts.front()->steps();
  st.has_lr_schedule = true;
  st.lr_schedule = scheduler.schedule();
  if (scaler) {
    st.has_scaler = true;
    st.scaler = scaler->state();
  }
  saver_->save(st, cm, co, so);
  last_saved_ = progress.iteration;
}

void RunCheckpointer::finish() {
  if (saver_) saver_->finish();
}

}  // namespace loom
