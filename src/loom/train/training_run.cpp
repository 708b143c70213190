#include "loom/train/training_run.h"

#include <omp.h>

#include <cstdio>

#include "loom/core/error.h"
#include "loom/data/tokenizer.h"
#include "loom/models/family.h"
#include "loom/dist/communicator.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/loss_scaler.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/parallel/data_parallel.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/arguments.h"
#include "loom/train/deepspeed_log.h"
#include "loom/train/exit_conditions.h"
#include "loom/train/log_format.h"
#include "loom/train/memory_preflight.h"
#include "loom/train/model_chunks.h"
#include "loom/train/optimizer_setup.h"
#include "loom/train/tensorboard_log.h"
#include "loom/train/train_outputs.h"
#include "loom/train/trainer.h"

namespace loom {

namespace {

double ms_since(TrainingRun::Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(TrainingRun::Clock::now() - t).count();
}

}  // namespace

TrainingRun::TrainingRun(TrainArgs& a, const ArgParser& p, Clock::time_point started)
    : a_(a), p_(p), started_(started) {}

TrainingRun::~TrainingRun() = default;

void TrainingRun::setup(int argc, char** argv) {
  world_ = dist::Communicator::world();
  out_ = {world_->rank(), world_->size()};
  // Every rank must run the same command: a mismatch would hang the first collective.
  std::string flags;
  for (int i = 0; i < argc; i++) flags += std::string(argv[i]) + '\n';
  dist::check_same_across_ranks("the loom train flags", flags);
  a_.validate(p_);
  a_.validate_layout(world_->size());
  tensorboard_ = std::make_unique<RunTensorBoard>(a_.tensorboard, world_->rank(), world_->size());
  check_data_prefixes(a_.data_path);
  if (a_.threads > 0) omp_set_num_threads(a_.threads);
  grid_ = std::make_unique<parallel::ProcessGrid>(world_, a_.tensor_model_parallel_size, a_.context_parallel_size,
                                                  a_.pipeline_model_parallel_size);
  tp_ = {grid_->tensor(), grid_->tp_rank(), grid_->tp_size(), a_.sequence_parallel};
  check_train_outputs(a_, *grid_);  // before any work: a run must not train for hours and then fail to save
  tokenizer_ = data::make_tokenizer({a_.tokenizer_type, a_.vocab_file, a_.merge_file, a_.tokenizer_model});
  if (a_.vocab_size && *a_.vocab_size != tokenizer_->vocab_size())
    fail("--vocab-size (" + std::to_string(*a_.vocab_size) + ") differs from the tokenizer's (" +
         std::to_string(tokenizer_->vocab_size()) + "): give the tokenizer the model was made for, or drop --vocab-size");
  cfg_ = a_.model_config(tokenizer_->vocab_size());
  gbs_ = *a_.global_batch_size;
  ramp_.emplace(a_.batch_rampup());
  print_setup_lines(out_, p_, a_, *grid_, cfg_);
  if (const std::string line = a_.compat.no_effect_line(p_); !line.empty()) out_.print_rank_0(line);
  if (out_.rank == 0)
    for (const std::string& w : a_.config_warnings) std::fprintf(stderr, "loom: warning: %s\n", w.c_str());
  pl_ = {grid_->pipeline(), grid_->pp_rank(), grid_->pp_size(), a_.virtual_pipeline_size(), a_.schedule(),
         int(a_.pipeline_max_in_flight.value_or(0))};
  // Before anything large is allocated: a layout that cannot fit stops here with the figures.
  const RankMemoryPrediction predicted = check_memory_fits(a_, cfg_, *grid_, pl_, tp_);
  if (a_.train_iters == 0 && !a_.skip_train) {
    print_dry_run(predicted);
    return;
  }

  // Data first: a bad dataset is reported before the model takes memory.
  const auto data_start = Clock::now();
  data_ = build_training_data(a_, tokenizer_->vocab_size(), out_.rank != 0, grid_->dp_size());
  const double data_ms = ms_since(data_start);

  const auto model_start = Clock::now();
  build_model();
  const TrainState resumed = initialize_or_load(a_, chunks_, opts_, out_);
  offload_optimizer_states(a_, opts_, param_dtype(a_), out_);
  scaler_ = build_grad_scaler(a_);
  if (scaler_ && resumed.has_scaler) scaler_->load_state(resumed.scaler);
  scheduler_ = std::make_unique<LrScheduler>(
      resumed_lr_schedule(a_, lr_schedule(a_, p_.was_set("--lr-warmup-fraction")), resumed, out_));
  scheduler_->set_num_steps(resumed.scheduler_steps);
  out_.print_rank_0("> learning rate decay style: " + scheduler_->schedule().style);
  const double model_ms = ms_since(model_start);

  build_trainer();
  char buf[160];
  std::snprintf(buf, sizeof buf, "time (ms) | model-and-optimizer-setup: %.2f | train/valid/test-data-iterators-setup: %.2f",
                model_ms, data_ms);
  out_.print_rank_0("done with setup ...");
  out_.print_rank_0(buf);
  out_.print_rank_0("training ...");

  flops_per_iteration_ = model_family(a_.model).flops_per_iteration(cfg_, gbs_);
  progress_ = {resumed.iteration, resumed.consumed_train_samples, resumed.consumed_valid_samples,
               resumed.skipped_train_samples};
  batch_ = ramp_->at(0);  // what the calculator printed at set-up
  checkpointer_ = std::make_unique<RunCheckpointer>(a_, cfg_, *grid_);
  // Exit requests (signals, --exit-duration-in-mins) must be seen by every rank at the same iteration.
  exit_ = std::make_unique<ExitConditions>(a_, world_, started_);
  deepspeed_log_ = std::make_unique<DeepSpeedLog>(a_, world_->size(), world_->rank());
  deepspeed_log_->print_config();
}

// This rank's model chunks (the whole model, a pipeline stage, or its virtual stages) and their optimizers.
void TrainingRun::build_model() {
  out_.print_rank_0("building GPT model ...");
  const std::vector<StageSpec> specs = rank_stage_specs(a_, cfg_, pl_, out_);
  models_ = build_model_chunks(a_, cfg_, specs, pl_, tp_, param_storage(a_, *grid_));
  for (const auto& m : models_) chunks_.push_back(m.get());
  optimizers_ = build_optimizers(a_, chunks_, tp_);
  for (const auto& o : optimizers_) opts_.push_back(o.get());
  int64_t params_on_rank = 0;
  for (DecoderModel* m : chunks_) params_on_rank += m->num_params_on_rank();
  if (grid_->dp_rank() == 0) {  // as Megatron: every model-parallel rank of the first data-parallel replica
    std::printf("%s\n", format_param_count_line(grid_->tp_rank(), grid_->pp_rank(), params_on_rank).c_str());
    std::fflush(stdout);
  }
  world_->barrier();
}

// --train-iters 0: the counts and the predicted memory of every rank, nothing built.
void TrainingRun::print_dry_run(const RankMemoryPrediction& m) {
  dry_run_ = true;
  // Every rank's lines are gathered and printed by rank 0, in rank order: printed by each rank just before
  // it exits, a line could be lost on its way through mpirun (seen once on a loaded machine: a 2-rank dry
  // run printed only rank 0's prediction), and the ranks' lines came in any order.
  const std::string counts = grid_->dp_rank() == 0
                                 ? format_param_count_line(grid_->tp_rank(), grid_->pp_rank(), m.parameters) + "\n"
                                 : std::string();
  const std::vector<std::string> all_counts = dist::gather_strings(*world_, counts, 0);
  const std::vector<std::string> predictions =
      dist::gather_strings(*world_, format_predicted_memory_line(out_.rank, m) + "\n", 0);
  for (const auto* lines : {&all_counts, &predictions})
    for (const std::string& line : *lines) std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  out_.print_rank_0("dry run (--train-iters 0): nothing trained, no model or data built");
}

void TrainingRun::build_trainer() {
  TrainStepOptions so;
  so.micro_batch = a_.micro_batch_size;
  so.num_micro_batches = a_.num_micro_batches();
  so.micro_batch_counts = ramp_->micro_batch_counts();
  so.seq = a_.seq_length;
  so.clip_grad = a_.clip_grad;
  so.seed = uint64_t(a_.seed);
  so.batch.eod = tokenizer_->eod();
  so.batch.eod_mask_loss = a_.eod_mask_loss;
  so.batch.reset_position_ids = a_.reset_position_ids;
  so.batch.reset_attention_mask = a_.reset_attention_mask;
  for (DecoderModel* m : chunks_) {
    // Overlap needs the last micro-batch's backward to run layer by layer for one chunk: no pipeline.
    reducers_.push_back(std::make_unique<GradReducer>(*m, grid_->data(), *a_.ddp_bucket_size,
                                                      a_.overlap_grad_reduce && pl_.size == 1));
    so.reducers.push_back(reducers_.back().get());
  }
  so.dp = grid_->data();
  so.dp_rank = grid_->dp_rank();
  so.dp_size = grid_->dp_size();
  so.model_parallel = grid_->group(parallel::GroupKind::Model);
  so.embedding = grid_->group(parallel::GroupKind::Embedding);
  so.pipeline = pl_;
  so.scaler = scaler_.get();
  so.log_num_zeros = a_.compat.log_num_zeros_in_grad;
  so.log_params_norm = a_.compat.log_params_norm;
  so.world = world_;
  trainer_ = std::make_unique<Trainer>(chunks_, opts_, *scheduler_, so, timers_);
  if (!a_.pipeline_trace.empty() && trainer_->pipeline()) trainer_->pipeline()->set_tracing(true);
  for (DecoderModel* m : chunks_) m->set_profiling(a_.profile_layers);
  profile_ = std::make_unique<LayerProfile>(a_.profile_layers, out_.rank, *grid_, model_family(a_.model).block_modules);
}

bool TrainingRun::train() {
  interval_.restart_clock();
  // Megatron's num_microbatches before its loop: the calculator at the consumed samples (after --load).
  int micro_batches = ramp_->at(progress_.consumed_train_samples).micro_batches;
  while (progress_.iteration < a_.train_iters) {
    update_batch(micro_batches);
    const StepResult r = trainer_->train_step(data_.train, progress_.consumed_train_samples, progress_.iteration,
                                              batch_.micro_batches);
    const int64_t iteration = ++progress_.iteration;
    // Megatron: consumed samples advance by the batch run; what rounding left out is counted as skipped.
    progress_.consumed_train_samples += batch_.running;
    progress_.skipped_train_samples += batch_.global - batch_.running;
    interval_.add_batch(batch_.running, batch_.running == gbs_ ? flops_per_iteration_
                                                               : model_family(a_.model).flops_per_iteration(cfg_, batch_.running));
    interval_.add(r, iteration);
    tensorboard_step(r);
    deepspeed_log_->after_step(iteration, scheduler_->lr(), r.skipped, timers_);
    if (iteration % a_.log_interval == 0) log_interval();
    if (a_.save_interval > 0 && iteration % a_.save_interval == 0 && iteration < a_.train_iters) save();
    if (iteration % a_.eval_interval == 0 && iteration < a_.train_iters) {
      validate("iteration " + std::to_string(iteration));
      interval_.restart_clock();
    }
    if (const std::string why = iteration < a_.train_iters ? exit_->reason(iteration) : ""; !why.empty()) {
      save();
      checkpointer_->finish();
      out_.print_rank_0("exiting program " + why);
      return false;
    }
  }
  out_.print_rank_0("[after training is done] datetime: " + now_timestamp());
  profile_->write_costs(a_.profile_layers_output);
  write_pipeline_trace(*trainer_, *grid_, a_.pipeline_trace);
  save();
  checkpointer_->finish();
  return true;
}

// Megatron's update_num_microbatches at the top of each iteration: the batch at the consumed samples, its
// lines when the global batch changes, a checkpoint (with --save) when the micro-batch count changes, and
// the consistency check (a resumed run whose sizes no longer divide stops with one line).
void TrainingRun::update_batch(int& micro_batches) {
  const BatchSizes now = ramp_->at(progress_.consumed_train_samples);
  if (now.global != batch_.global)
    for (const std::string& line : ramp_->change_lines(batch_, now)) out_.print_rank_0(line);
  if (now.micro_batches != micro_batches) {
    if (progress_.iteration != 0) save();  // nothing without --save
    micro_batches = now.micro_batches;
  }
  if (const std::string why = ramp_->inconsistency(progress_.consumed_train_samples); !why.empty()) fail(why);
  batch_ = now;
}

void TrainingRun::finish() {
  validate("iteration " + std::to_string(progress_.iteration) + " on validation set");
  if (a_.eval_iters > 0 && data_.test.size > 0) {
    const double loss = trainer_->evaluate(data_.test, 0, a_.eval_iters);
    const std::string prefix = "iteration " + std::to_string(progress_.iteration) + " on test set";
    // As Megatron since 2023: the test loss goes under the validation tag too, at the last iteration.
    if (!a_.skip_train) tensorboard_->validation(progress_.iteration, progress_.consumed_train_samples, loss);
    out_.print_rank_last(format_validation_block(prefix, loss));
  }
}

// The lines that end a log interval; the memory lines only after the first.
void TrainingRun::log_interval() {
  IterationFigures f;
  f.iteration = progress_.iteration;
  f.consumed_samples = progress_.consumed_train_samples;
  f.skipped_samples = progress_.skipped_train_samples;
  f.learning_rate = scheduler_->lr();
  f.loss_scale = trainer_->loss_scale();
  f.flops_per_iteration = interval_.iterations > 0 ? interval_.flops / interval_.iterations : flops_per_iteration_;
  f.world = out_.world;
  f.elapsed_ms = interval_.elapsed_ms_per_iteration();
  tensorboard_->iteration_time(progress_.iteration, f.elapsed_ms / 1000.0);
  out_.print_rank_last(interval_iteration_line(interval_, a_, f));
  if (!memory_reported_) {
    print_memory_lines(out_.rank, progress_.iteration, grid_->dp_rank() == 0, chunks_, opts_);
    memory_reported_ = true;
  }
  out_.print_rank_last(timers_.log_line(double(interval_.iterations)));
  profile_->report(progress_.iteration, chunks_);
  interval_.restart();
}

void TrainingRun::validate(const std::string& prefix) {
  if (a_.eval_iters == 0 || data_.valid.size == 0) return;
  const double loss = trainer_->evaluate(data_.valid, progress_.consumed_valid_samples, a_.eval_iters);
  progress_.consumed_valid_samples += int64_t(a_.eval_iters) * gbs_;
  if (!a_.skip_train) tensorboard_->validation(progress_.iteration, progress_.consumed_train_samples, loss);
  out_.print_rank_last(format_validation_block(prefix, loss));
}

// Megatron's training_log scalars of the iteration just done (queued: the writer thread writes them).
void TrainingRun::tensorboard_step(const StepResult& r) {
  TensorBoardStep s;
  s.iteration = progress_.iteration;
  s.consumed_samples = progress_.consumed_train_samples;
  s.batch_size = batch_.running;  // Megatron's batch-size scalar: micro x data-parallel x micro-batches
  s.world_size = out_.world;
  s.loss = r.loss;
  s.skipped = r.skipped;
  s.grad_norm = r.grad_norm;
  s.num_zeros = r.num_zeros;
  s.params_norm = r.params_norm;
  s.learning_rate = scheduler_->lr();
  s.loss_scale = trainer_->loss_scale();
  s.fp16 = a_.fp16;
  s.interval_iterations = interval_.iterations;
  tensorboard_->step(s, timers_);
}

void TrainingRun::save() {
  checkpointer_->save(progress_, chunks_, opts_, *scheduler_, scaler_.get(), timers_, out_);
}

int run_training(TrainArgs& a, const ArgParser& p, int argc, char** argv, TrainingRun::Clock::time_point started) {
  TrainingRun run(a, p, started);
  run.setup(argc, argv);
  if (run.dry_run()) return 0;
  if (!a.skip_train && !run.train()) return 0;  // an exit condition ended the run
  run.finish();
  return 0;
}

}  // namespace loom
