#include "loom/train/coca_run.h"

#include <cmath>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

#include "loom/ckpt/coca_checkpoint.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/eval/eval_log.h"
#include "loom/eval/retrieval.h"
#include "loom/models/coca/coca_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/coca_param_groups.h"
#include "loom/optim/loss_scaler.h"
#include "loom/optim/param_groups.h"
#include "loom/optim/warmup_cosine.h"
#include "loom/train/coca_data.h"
#include "loom/train/coca_logging.h"
#include "loom/train/coca_step.h"
#include "loom/train/coca_zero_shot.h"
#include "loom/train/deepspeed_lines.h"
#include "loom/train/deepspeed_progress.h"
#include "loom/train/eva_clip_log.h"
#include "loom/train/exit_conditions.h"
#include "loom/util/event_writer.h"
#include "loom/util/output_path.h"

namespace loom {

namespace fs = std::filesystem;

namespace {

// EVA-CLIP's default run name: date-model-lr-batch-workers-precision.
std::string default_run_name(const CocaArgs& a, const std::string& model_name) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%Y_%m_%d-%H_%M_%S", &tm);
  return std::string(date) + "-model_" + model_name + "-lr_" + python_float(a.lr) + "-b_" + std::to_string(a.batch_size) +
         "-j_" + std::to_string(a.data.workers) + "-p_" + a.precision;
}

class CocaRun {
 public:
  CocaRun(CocaArgs& a, const ArgParser& p, std::chrono::steady_clock::time_point started)
      : a_(a), p_(p), started_(started), world_(dist::Communicator::world()) {}
  void setup();
  void train();

 private:
  void log_step(const CocaStepResult& r, int64_t epoch, int64_t i, int64_t step);
  void evaluate(int64_t epoch);
  // epoch: epochs completed; step: steps taken; batch: batches of the current epoch taken (0 at its end).
  void save(const std::string& tag, int64_t epoch, int64_t step, int64_t batch);
  void print_wall_clock(const CocaStepResult& r) const;
  void print_progress(int64_t steps_done);

  CocaArgs& a_;
  const ArgParser& p_;
  std::chrono::steady_clock::time_point started_;
  std::shared_ptr<dist::Communicator> world_;
  int rank_ = 0, world_size_ = 1;
  std::string model_name_, run_dir_, checkpoints_;
  std::unique_ptr<EvaLogger> log_;
  std::unique_ptr<EventWriter> tb_;  // rank 0 with --report-to tensorboard
  int tb_file_ = -1;
  std::unique_ptr<CocaModel> model_;
  ParamGroupTable groups_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<GradScaler> scaler_;
  std::unique_ptr<CocaStep> step_;
  std::unique_ptr<CocaDataSource> train_, val_;
  std::unique_ptr<CocaZeroShot> zero_shot_;  // rank 0 with --zeroshot-frequency
  std::unique_ptr<ExitConditions> exit_;
  int64_t start_epoch_ = 0, start_batch_ = 0, steps_at_start_ = 0, total_steps_ = 0;
  EvaTrainLine line_;
  AverageMeter data_time_, batch_time_;
  std::vector<double> group_lrs_;
  bool scale_is_float_ = false;
  std::unique_ptr<DeepSpeedThroughputTimer> ds_timer_;  // --enable-deepspeed: DeepSpeed's progress lines
};

void CocaRun::setup() {
  rank_ = world_->rank();
  world_size_ = world_->size();
  a_.apply_deepspeed_config(p_, world_size_);
  a_.validate(world_size_);
  model_name_ = (a_.model_preset == "coca-b16" || a_.model == "CoCa-B-16") ? "CoCa-B-16" : "coca";
  if (a_.train_data.empty()) fail("--train-data is required (an image-text index: see 'loom make-images')");

  // Inputs first (the index is parsed and checked here, before anything large is allocated), then the
  // run's directory.
  train_ = make_coca_data(a_, a_.train_data, CocaDataOptions{}, rank_, world_size_);
  CocaDataOptions eval_options;
  eval_options.training = false;
  if (!a_.val_data.empty()) val_ = make_coca_data(a_, a_.val_data, eval_options, 0, 1);
  // Every rank checks the classes file and the labelled index (one error line from each, before any
  // work); rank 0 evaluates.
  if (a_.zeroshot.enabled()) zero_shot_ = std::make_unique<CocaZeroShot>(a_);
  if (train_->batches_per_epoch() == 0)
    fail(a_.train_data + " has " + std::to_string(train_->num_samples()) + " entries, fewer than one global batch of " +
         std::to_string(a_.global_batch(world_size_)));

  std::string name = a_.name.empty() ? default_run_name(a_, model_name_) : a_.name;
  world_->broadcast(name, 0);  // one name even if the ranks' clocks straddle a second
  run_dir_ = (fs::path(a_.logs) / name).string();
  checkpoints_ = (fs::path(run_dir_) / "checkpoints").string();
  if (rank_ == 0) {
    std::error_code ec;
    if (a_.resume.empty() && fs::exists(fs::path(run_dir_) / "out.log", ec))
      fail("Experiment already exists. Use --name {} to specify a new experiment: " + run_dir_);
    if (const std::string problem = output_dir_problem(checkpoints_); !problem.empty()) fail(problem);
    fs::create_directories(checkpoints_, ec);
    if (ec) fail("cannot create " + checkpoints_ + ": " + ec.message());
  }
  world_->barrier();
  log_ = std::make_unique<EvaLogger>(rank_, (fs::path(run_dir_) / "out.log").string());
  if (a_.report_to == "tensorboard" && rank_ == 0) {
    tb_ = std::make_unique<EventWriter>(1000);
    tb_file_ = tb_->open((fs::path(run_dir_) / "tensorboard").string());
  }

  if (world_size_ > 1)
    log_->info_all("Running in distributed mode with multiple processes. Device: cpu.Process (global: " +
                   std::to_string(rank_) + ", local " + std::to_string(rank_) + "), total " +
                   std::to_string(world_size_) + ".");
  else
    log_->info("Running with a single process. Device cpu.");
  log_->info_all("Loaded " + model_name_ + " model config.");
  for (const std::string& w : a_.config_warnings) log_->info("warning: " + w);

  ParamStorage storage;
  const bool fp16 = a_.precision == "fp16" || a_.precision == "amp";
  if (fp16) storage.weights = DType::F16;
  if (a_.precision == "bf16") storage.weights = DType::BF16;
  const int zero = a_.enable_deepspeed || a_.zero_stage > 0 ? a_.zero_stage : 0;
  if (zero >= 1 && world_size_ > 1) storage.zero_group = world_;
  storage.shard_grads = zero >= 2 && world_size_ > 1;
  model_ = std::make_unique<CocaModel>(a_.shape, a_.batch_size, storage, storage.zero_group ? 16 * world_size_ : 16,
                                       a_.grad_checkpointing, world_);
  for (const std::string& l : coca_count_lines(a_.shape)) log_->info_all(l);

  groups_ = coca_param_groups(a_.shape, a_.group_flags.settings(a_.lr, a_.wd));
  for (const std::string& l : assigned_values_lines(groups_)) log_->info_all(l);
  auto dump = p_.dump();
  dump.emplace_back("world_size", std::to_string(world_size_));
  for (const std::string& l : eva_params_lines(dump)) log_->info(l);
  log_param_groups(groups_, [&](const std::string& l) { log_->info(l); });

  AdamWOptions o;
  o.beta1 = a_.beta1;
  o.beta2 = a_.beta2;
  o.eps = a_.eps;
  o.weight_decay = a_.wd;
  o.kind = a_.optimizer == "lamb" ? OptimizerKind::Lamb : OptimizerKind::AdamW;
  a_.lamb.to_options(o);
  // DeepSpeed's engine (EVA-CLIP's --enable-deepspeed) runs LAMB as FusedLamb, configured or not (log 000).
  o.lamb_deepspeed = a_.optimizer == "lamb" && a_.enable_deepspeed;
  opt_ = std::make_unique<AdamW>(model_->params(), o);
  std::vector<double> wds;
  for (const ParamGroup& g : groups_.groups) wds.push_back(g.weight_decay);
  opt_->set_param_groups(groups_.group_of_param, wds);
  // DeepSpeed's ZeRO-1/2 hands FusedLamb one flattened piece per group and rank: its trust ratios are
  // those pieces' (log 000), not whole tensors'.
  if (o.lamb_deepspeed && zero >= 1 && world_size_ > 1) opt_->set_trust_ratio_partitions(world_size_);
  group_lrs_.assign(groups_.groups.size(), 0.0);
  if (fp16 && a_.static_loss_scale > 0) scaler_ = std::make_unique<ConstantGradScaler>(a_.static_loss_scale);
  else if (fp16)
    scaler_ = std::make_unique<DynamicGradScaler>(std::ldexp(1.0, a_.initial_scale_power), a_.min_loss_scale, 2.0, 0.5,
                                                  a_.loss_scale_window, a_.hysteresis);
  step_ = std::make_unique<CocaStep>(*model_, *opt_, scaler_.get(), world_, a_.grad_clip_norm);
  log_->info(param_group_count_line(groups_));
  if (a_.enable_deepspeed) {
    // The engine's first progress line, before any checkpoint is loaded: step 0, every group's base lr.
    std::vector<double> base;
    for (const ParamGroup& g : groups_.groups) base.push_back(g.lr);
    log_->raw(deepspeed_prefix("logging.py:77:log_dist") + deepspeed_step_message(0, 0, base, a_.beta1, a_.beta2));
    ds_timer_ = std::make_unique<DeepSpeedThroughputTimer>(a_.steps_per_print, a_.global_batch(world_size_));
  }

  total_steps_ = train_->batches_per_epoch() * a_.epochs;
  if (a_.resume.empty()) {
    model_->init(uint64_t(a_.seed));
    opt_->reset_main_weights();  // fp16/bf16: the fp32 main weights start from the initialised ones
  } else {
    const CocaTrainState st = load_coca_checkpoint(a_.resume == "latest" ? checkpoints_ : a_.resume, *model_, opt_.get());
    if (st.has_scaler && scaler_) scaler_->load_state(st.scaler);
    start_epoch_ = st.epoch;
    start_batch_ = st.batch_in_epoch;
    steps_at_start_ = st.step;
    train_->restore(st.loader);
    log_->info("=> resuming checkpoint '" + resolve_coca_checkpoint(a_.resume == "latest" ? checkpoints_ : a_.resume) +
               "' (epoch " + std::to_string(st.epoch) + ")");
  }
  log_->info("total_steps: " + std::to_string(total_steps_));
  exit_ = std::make_unique<ExitConditions>(true, 0.0, 0, world_, started_);
}

void CocaRun::log_step(const CocaStepResult& r, int64_t epoch, int64_t i, int64_t step) {
  const int64_t nb = train_->batches_per_epoch();
  line_.global_step = step + 1;
  line_.epoch = epoch;
  line_.num_samples = (i + 1) * a_.global_batch(world_size_);
  line_.samples_per_epoch = train_->num_samples();
  line_.percent_complete = 100.0 * double(i + 1) / double(nb);
  const CocaConfig& c = a_.shape;
  line_.loss.update(r.losses.total(c));
  line_.loss_clip.update(c.contrastive_loss_weight * r.losses.contrastive);
  line_.loss_caption.update(c.caption_loss_weight * r.losses.caption);
  line_.grad_norm.update(r.grad_norm);
  line_.loss_scale.update(r.scale_after);
  // EVA-CLIP's LR is param_groups[0]'s; LR_<tower> the tower's last group with lr_scale 1.
  line_.lrs = {{"LR", group_lrs_[0]}};
  for (size_t t = 0; t < groups_.towers.size(); ++t) {
    if (groups_.towers[t].tower == "other") continue;
    double lr = 0;
    for (int g = groups_.tower_groups[t].first; g < groups_.tower_groups[t].second; ++g)
      if (groups_.groups[size_t(g)].lr_scale == 1.0) lr = group_lrs_[size_t(g)];
    line_.lrs.push_back({"LR_" + groups_.towers[t].tower, lr});
  }
  line_.logit_scale = model_->logit_scale();
  line_.data_time = data_time_;
  line_.batch_time = batch_time_;
  line_.global_batch = a_.global_batch(world_size_);
  log_->info(format_eva_train_line(line_));
  if (tb_) {
    // EVA-CLIP's log_data at each train line, as "train/" + name at the global step (its spellings,
    // grad_nrom and samples_per_scond included); the lrs of the line as lr, lr_visual, ...
    const std::pair<const char*, double> scalars[] = {
        {"loss", line_.loss.val},           {"loss_clip", line_.loss_clip.val},
        {"loss_caption", line_.loss_caption.val}, {"loss_scaler", line_.loss_scale.val},
        {"grad_nrom", line_.grad_norm.val}, {"data_time", line_.data_time.val},
        {"batch_time", line_.batch_time.val},
        {"samples_per_scond", double(line_.global_batch) / line_.batch_time.val},
        {"scale", line_.logit_scale}};
    for (const auto& [name, v] : scalars) tb_->add_scalar(tb_file_, std::string("train/") + name, v, step);
    for (const NamedLr& lr : line_.lrs) {
      std::string tag = "train/" + lr.name;
      for (char& ch : tag) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      tb_->add_scalar(tb_file_, tag, lr.lr, step);
    }
  }
  data_time_.reset();
  batch_time_.reset();
}

void CocaRun::train() {
  const int64_t nb = train_->batches_per_epoch();
  using Clock = std::chrono::steady_clock;
  int64_t steps_done = steps_at_start_;
  for (int64_t epoch = start_epoch_; epoch < a_.epochs; ++epoch) {
    log_->info("Start epoch " + std::to_string(epoch));
    line_ = EvaTrainLine{};  // EVA-CLIP's meters live for one epoch
    auto end = Clock::now();
    for (int64_t i = epoch == start_epoch_ ? start_batch_ : 0;; ++i) {
      CocaBatch b;
      // The epoch ends for every rank when one rank's stream has run out (unreadable images shorten it).
      int32_t have = train_->next(b) ? 1 : 0;
      if (world_size_ > 1) world_->all_reduce(&have, 1, dist::ReduceOp::Min);
      if (!have) {
        if (b.size > 0) train_->end_epoch();
        break;
      }
      const int64_t step = steps_done;
      // EVA-CLIP's warmup_cosine_lr, every step before the forward: each group's tower base lr x the
      // schedule x its layer-decay scale.
      evaclip_group_lrs(groups_, a_.warmup, total_steps_, step, group_lrs_);
      opt_->set_group_lrs(group_lrs_);
      data_time_.update(std::chrono::duration<double>(Clock::now() - end).count());
      if (ds_timer_) ds_timer_->start();
      const CocaStepResult r = step_->run(b.images, b.text, b.size, 1.0);
      if (scaler_) {
        // DeepSpeed's scale is the int 2**16 until it first changes, a float after (how it prints).
        const bool was_float = scale_is_float_;
        scale_is_float_ = scale_is_float_ || r.scale_after != r.scale_before;
        if (r.skipped)
          log_->raw(deepspeed_prefix("stage_1_and_2.py:1784:step") +
                    deepspeed_overflow_message(0, {r.scale_before, was_float}, {r.scale_after, scale_is_float_}));
      }
      if (a_.wall_clock_breakdown) print_wall_clock(r);
      if (ds_timer_) print_progress(step + 1);
      batch_time_.update(std::chrono::duration<double>(Clock::now() - end).count());
      end = Clock::now();
      steps_done = step + 1;
      if ((i % a_.log_every_n_steps) == 0 || i == nb - 1) log_step(r, epoch, i, step);
      const bool last = a_.max_steps > 0 && steps_done >= a_.max_steps;
      const std::string why = exit_->reason(steps_done);
      if (!why.empty() || last) {
        if (!why.empty()) log_->info("Stopping " + why + " at step " + std::to_string(steps_done) + ": saving a checkpoint");
        save("step_" + std::to_string(steps_done), epoch, steps_done, i + 1);
        return;
      }
    }
    const int64_t completed = epoch + 1;
    if (train_->skipped() > 0) log_->info("skipped unreadable images so far: " + std::to_string(train_->skipped()));
    // EVA-CLIP's main.py: evaluate() after every epoch when there is val or zero-shot data; each part
    // decides by its own frequency.
    if (val_ || zero_shot_) evaluate(completed);
    if (completed % a_.save_frequency == 0 || completed == a_.epochs)
      save("epoch_" + std::to_string(completed), completed, steps_done, 0);
  }
}

void CocaRun::print_wall_clock(const CocaStepResult& r) const {
  // DeepSpeed's three lines (log 000); an overflow step has no optimizer line.
  const std::string pre = deepspeed_prefix("logging.py:77:log_dist") + "[Rank 0] ";
  if (!r.skipped)
    log_->raw(pre + deepspeed_timer_message(0, {{"optimizer_allgather", r.optimizer_allgather_ms},
                                                {"optimizer_gradients", r.optimizer_gradients_ms},
                                                {"optimizer_step", r.optimizer_step_ms}}));
  const double bwd = r.backward_inner_ms + r.backward_allreduce_ms;
  log_->raw(pre + deepspeed_timer_message(0, {{"forward_microstep", r.forward_ms}, {"backward_microstep", bwd},
                                              {"backward_inner_microstep", r.backward_inner_ms},
                                              {"backward_allreduce_microstep", r.backward_allreduce_ms},
                                              {"step_microstep", r.step_ms}}));
  log_->raw(pre + deepspeed_timer_message(0, {{"forward", r.forward_ms}, {"backward", bwd},
                                              {"backward_inner", r.backward_inner_ms},
                                              {"backward_allreduce", r.backward_allreduce_ms}, {"step", r.step_ms}}));
}

void CocaRun::print_progress(int64_t steps_done) {
  // The engine's line at its global step (skipped overflow steps included, as restored on resume: the
  // optimizer's own count leaves them out), then its throughput timer's.
  if (a_.steps_per_print > 0 && steps_done % a_.steps_per_print == 0)
    log_->raw(deepspeed_prefix("logging.py:77:log_dist") +
              deepspeed_step_message(steps_done, steps_done - opt_->steps(), group_lrs_, a_.beta1, a_.beta2));
  const std::string t = ds_timer_->stop(memory_stats());
  if (!t.empty()) log_->raw(deepspeed_prefix("timer.py:198:stop") + t);
}

void CocaRun::evaluate(int64_t epoch) {
  // EVA-CLIP evaluates on the master process only; the others wait.
  if (rank_ == 0) {
    // The zero-shot metrics first, then the retrieval ones, in one line (EVA-CLIP's evaluate()).
    std::vector<eval::EvalMetric> metrics;
    if (zero_shot_ && zero_shot_->due(epoch))
      zero_shot_->evaluate(*model_, epoch, metrics, [&](const std::string& l) { log_->info(l); });
    if (val_ && a_.val_frequency > 0 && (epoch % a_.val_frequency == 0 || epoch == a_.epochs)) {
      const int E = a_.shape.embed_dim;
      std::vector<float> img, txt, bi(size_t(a_.batch_size) * E), bt(bi.size());
      CocaBatch b;
      while (val_->next(b)) {
        model_->encode(b.images, b.text, b.size, bi.data(), bt.data());
        img.insert(img.end(), bi.begin(), bi.begin() + int64_t(b.size) * E);
        txt.insert(txt.end(), bt.begin(), bt.begin() + int64_t(b.size) * E);
      }
      const int n = int(img.size() / size_t(E));
      eval::add_retrieval_metrics(metrics, eval::clip_retrieval_metrics(img.data(), txt.data(), n, E, model_->logit_scale()));
    }
    if (!metrics.empty()) log_->info(eval::eval_epoch_line(int(epoch), metrics));
  }
  world_->barrier();
}

void CocaRun::save(const std::string& tag, int64_t epoch, int64_t step, int64_t batch) {
  CocaTrainState st;
  st.epoch = epoch;
  st.step = step;
  st.batch_in_epoch = batch;
  st.optimizer_steps = opt_->steps();
  if (scaler_) {
    st.has_scaler = true;
    st.scaler = scaler_->state();
  }
  st.loader = train_->state();
  save_coca_checkpoint(checkpoints_, tag, *model_, *opt_, st, *world_);
  log_->info("saved checkpoint " + (fs::path(checkpoints_) / tag).string());
}

}  // namespace

int run_coca_training(CocaArgs& a, const ArgParser& p, std::chrono::steady_clock::time_point started) {
  CocaRun run(a, p, started);
  run.setup();
  run.train();
  return 0;
}

}  // namespace loom
