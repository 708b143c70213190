// `loom train`: Megatron's pretrain_gpt on one process. Everything the user can get wrong is checked
// before the model is allocated; the log lines are Megatron's.
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/checkpoint.h"
#include "loom/ckpt/safetensors.h"
#include <map>
#include <nlohmann/json.hpp>
#include <csignal>
#include "loom/core/allocator.h"
#include "loom/core/error.h"
#include "loom/data/gpt_data.h"
#include "loom/data/tokenizer.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/data_parallel.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/pipeline_runner.h"
#include "loom/models/gpt.h"
#include "loom/optim/adamw.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/train/arguments.h"
#include "loom/train/log_format.h"
#include "loom/train/trainer.h"

namespace loom::cmd {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// --exit-signal-handler: SIGTERM, SIGINT and SIGHUP ask for a checkpoint at the end of the iteration.
volatile std::sig_atomic_t g_exit_signal = 0;
void on_exit_signal(int) { g_exit_signal = 1; }
void install_exit_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_exit_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);
}

// Megatron's print_rank_0 / print_rank_last.
int g_rank = 0, g_world = 1;
void say(const std::string& line) {
  if (g_rank != 0) return;
  std::fputs(line.c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
}
void say_last(const std::string& line) {
  if (g_rank != g_world - 1) return;
  std::fputs(line.c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
}

// Resident set size now and at its peak, in MB: the CPU counterpart of CUDA's reserved memory.
std::pair<double, double> resident_mb() {
  double now = 0;
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (statm >> pages_total >> pages_resident) now = double(pages_resident) * double(sysconf(_SC_PAGESIZE)) / 1048576.0;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {now, std::max(now, double(ru.ru_maxrss) / 1024.0)};
}

void check_data_prefixes(const std::vector<std::string>& data_path) {
  // Either "prefix" or "w1 prefix1 w2 prefix2 ...": check every prefix's files before any work.
  std::vector<std::string> prefixes;
  if (data_path.size() == 1) {
    prefixes = data_path;
  } else {
    require(data_path.size() % 2 == 0, "--data-path with several datasets takes weight-prefix pairs");
    for (size_t i = 1; i < data_path.size(); i += 2) prefixes.push_back(data_path[i]);
  }
  for (const auto& prefix : prefixes)
    for (const char* ext : {".bin", ".idx"})
      require(std::filesystem::is_regular_file(prefix + ext),
              "data file " + prefix + ext + " not found (--data-path takes the prefix 'loom preprocess' wrote)");
}

std::map<std::string, std::string> weights_metadata(const GptConfig& cfg, const TrainArgs& a, int64_t iteration,
                                                    int64_t consumed) {
  auto meta = gpt_config_metadata(cfg);
  meta["vocab_file"] = std::filesystem::absolute(a.vocab_file).string();
  meta["merge_file"] = std::filesystem::absolute(a.merge_file).string();
  meta["iteration"] = std::to_string(iteration);
  meta["consumed_train_samples"] = std::to_string(consumed);
  return meta;
}

// Costs per layer [embed, 0 .. L-1, lm_head] from a --profile-layers-output file.
std::vector<double> read_layer_costs(const std::string& path, int num_layers) {
  std::ifstream f(path);
  if (!f) fail("cannot open " + path + " (--pipeline-split-costs)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail(path + ": malformed JSON: " + e.what());
  }
  std::vector<double> costs;
  auto get = [&](const std::string& key) {
    if (!j.contains(key) || !j[key].is_number()) fail(path + ": no cost for layer '" + key + "' (a profile of another model?)");
    costs.push_back(j[key].get<double>());
  };
  get("embed");
  for (int i = 0; i < num_layers; i++) get(std::to_string(i));
  get("lm_head");
  return costs;
}

}  // namespace

int train(int argc, char** argv) {
  const auto setup_start = Clock::now();
  TrainArgs a;
  ArgParser p("loom train", "Train a Megatron GPT on data written by 'loom preprocess'.");
  a.register_flags(p);
  p.add_example(
      "loom train --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --micro-batch-size 8 "
      "--global-batch-size 16 --train-iters 400 --lr 6e-4 --min-lr 6e-5 --lr-decay-style cosine --lr-warmup-iters 40 "
      "--data-path runs/kjv_text_document --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt "
      "--save runs/demo");
  p.add_example("loom train ... --hidden-dropout 0 --attention-dropout 0 --clip-grad 1.0 --eval-interval 100 --eval-iters 10");
  p.add_example("mpirun -np 8 loom train ... --tensor-model-parallel-size 2 --sequence-parallel "
                "--pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1 --zero-stage 1");
  p.add_example("loom train ... --fp16 --recompute-granularity full --save runs/ckpt --save-interval 100 --exit-signal-handler");
  p.add_example("loom train ... --load runs/ckpt --save runs/ckpt   (resume, in any parallel layout)");
  if (!p.parse(argc, argv)) return 0;
  auto world = dist::Communicator::world();
  g_rank = world->rank();
  g_world = world->size();
  // Every rank must run the same command: a mismatch would hang the first collective.
  std::string flags;
  for (int i = 0; i < argc; i++) flags += std::string(argv[i]) + '\n';
  dist::check_same_across_ranks("the loom train flags", flags);
  a.validate(p);
  a.validate_layout(world->size());
  check_data_prefixes(a.data_path);
  if (a.threads > 0) omp_set_num_threads(a.threads);
  parallel::ProcessGrid grid(world, a.tensor_model_parallel_size, a.context_parallel_size,
                             a.pipeline_model_parallel_size);
  TensorParallel tp{grid.tensor(), grid.tp_rank(), grid.tp_size(), a.sequence_parallel};

  auto tokenizer = data::make_tokenizer({a.tokenizer_type, a.vocab_file, a.merge_file});
  const GptConfig cfg = a.model_config(tokenizer->vocab_size());
  const int64_t gbs = *a.global_batch_size;
  const int M = a.num_micro_batches();

  say(grid.layout().describe());
  const DType param_dtype = a.fp16 ? DType::F16 : a.bf16 ? DType::BF16 : DType::F32;
  say(std::string("using ") + (a.fp16 ? "float16" : a.bf16 ? "bfloat16" : "float32") + " for parameters ...");
  auto dump = p.dump();
  dump.push_back({"data_parallel_size", std::to_string(grid.dp_size())});
  dump.push_back({"world_size", std::to_string(grid.world_size())});
  dump.push_back({"padded_vocab_size", std::to_string(cfg.padded_vocab_size)});
  dump.push_back({"params_dtype", a.fp16 ? "torch.float16" : a.bf16 ? "torch.bfloat16" : "torch.float32"});
  std::stable_sort(dump.begin(), dump.end(), [](auto& x, auto& y) {
    return strcasecmp(x.first.c_str(), y.first.c_str()) < 0;
  });
  if (g_rank == 0) std::fputs(format_arguments(dump).c_str(), stdout);
  say("setting number of micro-batches to constant " + std::to_string(M));
  say("> building " + a.tokenizer_type + " tokenizer ...");
  say(" > padded vocab (size: " + std::to_string(cfg.vocab_size) + ") with " +
      std::to_string(cfg.padded_vocab_size - cfg.vocab_size) + " dummy tokens (new size: " +
      std::to_string(cfg.padded_vocab_size) + ")");
  say("> setting random seeds to " + std::to_string(a.seed) + " ...");

  // Data first: a bad dataset is reported before the model takes memory.
  const auto data_start = Clock::now();
  data::GptDataConfig dc;
  dc.data_path = a.data_path;
  dc.split = a.split;
  dc.seq_length = a.seq_length;
  dc.seed = uint64_t(a.seed);
  const data::TargetSamples target = data::megatron_target_samples(a.train_iters, gbs, a.eval_interval, a.eval_iters);
  dc.train_samples = target.train;
  dc.valid_samples = target.valid;
  dc.test_samples = target.test;
  dc.cache_dir = a.data_cache_path;
  dc.quiet = g_rank != 0;
  data::GptDatasets datasets = data::build_gpt_datasets(dc);
  const double data_ms = ms_since(data_start);
  auto as_set = [](const std::unique_ptr<data::SampleSource>& src) {
    SampleSet s;
    if (!src) return s;
    s.size = src->size();
    const data::SampleSource* raw = src.get();
    s.get = [raw](int64_t i, int32_t* out) { raw->get(i, out); };
    return s;
  };
  SampleSet train_set = as_set(datasets.train), valid_set = as_set(datasets.valid), test_set = as_set(datasets.test);
  require(a.train_iters == 0 || train_set.size > 0, "the training split is empty: check --split and the data");

  const auto model_start = Clock::now();
  say("building GPT model ...");
  // This rank's model chunks: the whole model, a pipeline stage, or its virtual stages.
  PipelineLayout pl{grid.pipeline(), grid.pp_rank(), grid.pp_size(), a.virtual_pipeline_size(), a.schedule()};
  std::vector<StageSpec> specs;
  if (a.pipeline_split == "cost") {
    const std::vector<double> costs =
        a.pipeline_split_costs.empty() ? gpt_layer_costs(cfg) : read_layer_costs(a.pipeline_split_costs, cfg.num_layers);
    const std::vector<int> counts = split_by_cost(costs, pl.size);
    std::string plan;
    int first = 0;
    for (int s = 0; s < pl.size; s++) {
      if (s == pl.rank) specs.push_back({first, counts[size_t(s)], s == 0, s == pl.size - 1});
      first += counts[size_t(s)];
      plan += (s ? ", " : "") + std::to_string(counts[size_t(s)]);
    }
    say("> pipeline split by cost (" + std::string(a.pipeline_split_costs.empty() ? "FLOP model" : a.pipeline_split_costs) +
        "): blocks per stage [" + plan + "]");
  } else {
    specs = gpt_pipeline_chunks(cfg.num_layers, pl.size, pl.virtual_size, pl.rank, a.decoder_first_pipeline_num_layers,
                                a.decoder_last_pipeline_num_layers);
  }
  std::vector<std::unique_ptr<GptModel>> chunk_models;
  std::vector<std::unique_ptr<AdamW>> chunk_opts;
  std::vector<GptModel*> chunks;
  std::vector<AdamW*> opts;
  int64_t params_on_rank = 0;
  // Mixed precision and ZeRO decide how the parameters are stored (see ParamStorage).
  ParamStorage storage;
  storage.weights = param_dtype;
  // Megatron: bf16 always accumulates in fp32; fp16 unless --accumulate-allreduce-grads-in-fp32.
  storage.grads = a.fp16 && !a.accumulate_allreduce_grads_in_fp32 ? DType::F16 : DType::F32;
  if (a.zero_stage >= 1 && grid.dp_size() > 1) {
    storage.zero_group = grid.data();
    storage.shard_grads = a.zero_stage >= 2;
    storage.shard_weights = a.zero_stage >= 3;
  }
  for (size_t c = 0; c < specs.size(); c++) {
    const int slots = pl.size > 1 ? PipelineRunner::slots_needed(pl, M, int(c)) : 1;
    chunk_models.push_back(std::make_unique<GptModel>(cfg, a.micro_batch_size, a.seq_length, slots, tp, specs[c], storage));
    AdamWOptions ao{a.adam_beta1, a.adam_beta2, a.adam_eps, a.weight_decay};
    ao.kind = a.optimizer == "lamb" ? OptimizerKind::Lamb : OptimizerKind::AdamW;
    chunk_opts.push_back(std::make_unique<AdamW>(chunk_models.back()->params(), ao, tp.comm));
    chunks.push_back(chunk_models.back().get());
    opts.push_back(chunk_opts.back().get());
    params_on_rank += chunks.back()->num_params_on_rank();
  }
  if (grid.dp_rank() == 0) {  // as Megatron: every model-parallel rank of the first data-parallel replica
    std::printf("%s\n", format_param_count_line(grid.tp_rank(), grid.pp_rank(), params_on_rank).c_str());
    std::fflush(stdout);
  }
  world->barrier();
  TrainState resumed;
  if (a.load.empty()) {
    for (GptModel* m : chunks) m->init(uint64_t(a.seed));
    for (AdamW* o : opts) o->reset_main_weights();
  } else if (std::filesystem::is_regular_file(a.load)) {  // pretrained weights (e.g. loom convert output)
    say(" loading weights from " + a.load);
    for (size_t c = 0; c < chunks.size(); c++) {
      ParamStore& ps = chunks[c]->params();
      ps.acquire_full();
      load_weights(a.load, ps, &cfg);  // any layout: slices, re-padded vocabulary, architecture checked
      opts[c]->reset_main_weights();  // from the fp32 values just read
      ps.commit_full();
      ps.release_full();
    }
  } else {
    const std::string it = checkpoint_iteration_dir(a.load);
    say(" loading checkpoint from " + a.load + " (" + it + ")");
    resumed = load_checkpoint(a.load, chunks, opts, {!a.no_load_optim, a.finetune});
    for (AdamW* o : opts) o->set_steps(resumed.optimizer_steps);
    char line[160];
    std::snprintf(line, sizeof line, "  successfully loaded checkpoint from %s at iteration %lld", a.load.c_str(),
                  (long long)resumed.iteration);
    say(line);
  }
  if (a.offload_optimizer == "nvme") {
    // Three blocks of (m, v) are resident, 24 bytes per block element; 36 with fp32 main weights (half
    // precision), which go to the file too.
    const double per_element = param_dtype == DType::F32 ? 24.0 : 36.0;
    const int64_t block = std::max<int64_t>(1 << 14, int64_t(a.memory_budget_gb * 1073741824.0 / per_element));
    for (AdamW* o : opts) o->offload(a.offload_path, block);
    say("> optimizer state offloaded to " + a.offload_path + " in blocks of " + std::to_string(block) + " parameters");
  }
  GradScalerOptions gso;
  gso.fp16 = a.fp16;
  gso.bf16 = a.bf16;
  gso.loss_scale = a.loss_scale;
  gso.initial_loss_scale = a.initial_loss_scale;
  gso.min_loss_scale = a.min_loss_scale;
  gso.loss_scale_window = a.loss_scale_window;
  gso.hysteresis = a.hysteresis;
  std::unique_ptr<GradScaler> scaler = make_grad_scaler(gso);
  if (scaler && resumed.has_scaler) scaler->load_state(resumed.scaler);
  LrSchedule ls;
  ls.max_lr = a.lr;
  ls.min_lr = a.min_lr;
  ls.init_lr = a.lr_warmup_init;
  ls.style = a.lr_decay_style;
  ls.decay_steps = *a.lr_decay_iters * gbs;
  ls.warmup_steps = p.was_set("--lr-warmup-fraction") ? a.lr_warmup_fraction * double(ls.decay_steps)
                                                     : double(a.lr_warmup_iters * gbs);
  LrScheduler scheduler(ls);
  scheduler.set_num_steps(resumed.scheduler_steps);
  say("> learning rate decay style: " + a.lr_decay_style);
  const double model_ms = ms_since(model_start);

  Timers timers;
  TrainStepOptions so;
  so.micro_batch = a.micro_batch_size;
  so.num_micro_batches = M;
  so.seq = a.seq_length;
  so.clip_grad = a.clip_grad;
  so.seed = uint64_t(a.seed);
  so.batch.eod = tokenizer->eod();
  so.batch.eod_mask_loss = a.eod_mask_loss;
  so.batch.reset_position_ids = a.reset_position_ids;
  so.batch.reset_attention_mask = a.reset_attention_mask;
  std::vector<std::unique_ptr<GradReducer>> reducers;
  for (GptModel* m : chunks) {
    // Overlap needs the last micro-batch's backward to run layer by layer for one chunk: no pipeline.
    reducers.push_back(std::make_unique<GradReducer>(*m, grid.data(), *a.ddp_bucket_size,
                                                     a.overlap_grad_reduce && pl.size == 1));
    so.reducers.push_back(reducers.back().get());
  }
  so.dp = grid.data();
  so.dp_rank = grid.dp_rank();
  so.dp_size = grid.dp_size();
  so.model_parallel = grid.group(parallel::GroupKind::Model);
  so.embedding = grid.group(parallel::GroupKind::Embedding);
  so.pipeline = pl;
  so.scaler = scaler.get();
  so.world = world;
  Trainer trainer(chunks, opts, scheduler, so, timers);
  if (!a.pipeline_trace.empty() && trainer.pipeline()) trainer.pipeline()->set_tracing(true);
  for (GptModel* m : chunks) m->set_profiling(a.profile_layers);
  // Megatron-free, as the reference pipeline splitter prints it: per stage, per layer, forward only.
  std::map<std::string, std::pair<double, int>> profile_sum;  // label -> (ms, calls) over the whole run
  auto report_profile = [&](int64_t step) {
    if (!a.profile_layers) return;
    std::string text;
    char line[160];
    std::snprintf(line, sizeof line, "[rank:%d stage:%d] transformer-block(module) forward time (no send/recv) - step %lld\n",
                  g_rank, grid.pp_rank(), (long long)step);
    text += line;
    for (GptModel* m : chunks)
      for (const auto& t : m->take_profile()) {
        if (!t.calls) continue;
        std::snprintf(line, sizeof line, "  layer[%s]: total=%.3fms, ops=%d, avg/op=%.3fms\n", t.label.c_str(),
                      t.total_ms, t.calls, t.total_ms / t.calls);
        text += line;
        profile_sum[t.label].first += t.total_ms;
        profile_sum[t.label].second += t.calls;
      }
    if (grid.dp_rank() == 0 && grid.tp_rank() == 0) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    }
  };
  char buf[160];
  std::snprintf(buf, sizeof buf, "time (ms) | model-and-optimizer-setup: %.2f | train/valid/test-data-iterators-setup: %.2f",
                model_ms, data_ms);
  say("done with setup ...");
  say(buf);
  say("training ...");

  const double flops_per_iter = gpt_flops_per_iteration(cfg, gbs);
  int64_t consumed = resumed.consumed_train_samples, consumed_valid = resumed.consumed_valid_samples;
  int64_t iteration = resumed.iteration;
  double loss_acc = 0, norm_last = 0;
  int skipped = 0, nan_iterations = 0, stepped = 0;
  int loss_count = 0;
  bool memory_reported = false;
  auto interval_start = Clock::now();
  auto run_validation = [&](const std::string& prefix) {
    if (a.eval_iters == 0 || valid_set.size == 0) return;
    double loss = trainer.evaluate(valid_set, consumed_valid, a.eval_iters);
    consumed_valid += int64_t(a.eval_iters) * gbs;
    say_last(format_validation_block(prefix, loss));
  };
  std::unique_ptr<CheckpointSaver> saver;
  if (!a.save.empty()) saver = std::make_unique<CheckpointSaver>(a.save, grid);
  int64_t last_saved = -1;
  auto save = [&]() {
    if (!saver || last_saved == iteration) return;
    char line[64];
    std::snprintf(line, sizeof line, "saving checkpoint at iteration %7lld to ", (long long)iteration);
    say(line + a.save);
    SaveOptions so_save;
    so_save.save_optim = !a.no_save_optim;
    so_save.async = a.async_save;
    so_save.info = weights_metadata(cfg, a, iteration, consumed);
    TimerScope t(timers, "save-checkpoint");
    std::vector<const GptModel*> cm(chunks.begin(), chunks.end());
    std::vector<const AdamW*> co(opts.begin(), opts.end());
    TrainState st;
    st.iteration = iteration;
    st.consumed_train_samples = consumed;
    st.consumed_valid_samples = consumed_valid;
    st.scheduler_steps = scheduler.num_steps();
    st.optimizer_steps = opts.front()->steps();
    if (scaler) {
      st.has_scaler = true;
      st.scaler = scaler->state();
    }
    saver->save(st, cm, co, so_save);
    last_saved = iteration;
  };
  // Exit requests (signals, --exit-duration-in-mins) must be seen by every rank at the same iteration.
  if (a.exit_signal_handler) install_exit_signal_handlers();
  auto exit_reason = [&]() -> std::string {
    int64_t flags[2] = {g_exit_signal ? 1 : 0,
                        a.exit_duration_in_mins > 0 && ms_since(setup_start) > a.exit_duration_in_mins * 60000.0 ? 1 : 0};
    if (g_world > 1) world->all_reduce(flags, 2, dist::ReduceOp::Max);
    if (flags[0]) return "after receiving a termination signal";
    if (flags[1]) return "after " + python_float(a.exit_duration_in_mins) + " minutes (--exit-duration-in-mins)";
    if (a.exit_interval > 0 && iteration % a.exit_interval == 0) return "at iteration " + std::to_string(iteration) + " (--exit-interval)";
    return "";
  };

  if (!a.skip_train) {
    while (iteration < a.train_iters) {
      StepResult r = trainer.train_step(train_set, consumed, iteration);
      iteration++;
      consumed += gbs;
      loss_count++;
      if (r.skipped) {
        // Megatron: a skipped iteration adds neither loss nor grad norm to the interval's figures.
        skipped++;
        if (!std::isfinite(r.loss)) nan_iterations++;
      } else {
        loss_acc += r.loss;
        stepped++;
        norm_last = r.grad_norm;
        if (!std::isfinite(r.loss)) fail("loss is " + std::to_string(r.loss) + " at iteration " + std::to_string(iteration));
      }
      if (iteration % a.log_interval == 0) {
        const double elapsed = ms_since(interval_start) / double(loss_count);
        IterationLog l;
        l.timestamp = now_timestamp();
        l.iteration = iteration;
        l.train_iters = a.train_iters;
        l.consumed_samples = consumed;
        l.elapsed_ms = elapsed;
        l.tflops = flops_per_iter / (elapsed / 1000.0) / 1e12;
        // Per process, as Megatron's "per GPU" figures.
        l.tokens_per_s = double(gbs * a.seq_length) / (elapsed / 1000.0) / g_world;
        l.tflops /= g_world;
        l.learning_rate = scheduler.lr();  // as Megatron: the rate after this iteration's scheduler step
        l.global_batch_size = gbs;
        l.has_loss = stepped > 0;
        l.lm_loss = stepped ? loss_acc / stepped : 0.0;
        l.has_grad_norm = stepped > 0;
        l.grad_norm = norm_last;
        l.loss_scale = trainer.loss_scale();
        l.skipped = skipped;
        l.nan_iterations = nan_iterations;
        say_last(format_iteration_line(l));
        if (!memory_reported) {
          const MemoryStats m = memory_stats();
          auto [rss, max_rss] = resident_mb();
          if (grid.dp_rank() == 0)
            std::printf("%s\n", format_memory_line(g_rank, iteration, double(m.allocated) / 1048576.0,
                                                  double(m.max_allocated) / 1048576.0, rss, max_rss)
                                    .c_str());
          // The model states, every rank (ZeRO makes them differ from the replica's first rank's).
          double w = 0, g = 0, o = 0, work = 0;
          for (size_t c = 0; c < chunks.size(); c++) {
            w += double(chunks[c]->params().weight_bytes());
            g += double(chunks[c]->params().grad_bytes());
            work += double(chunks[c]->params().working_bytes() + chunks[c]->gemm_operand_bytes());
            o += double(opts[c]->state_bytes());
          }
          std::printf("%s\n", format_model_states_line(g_rank, w / 1048576.0, g / 1048576.0, o / 1048576.0,
                                                       work / 1048576.0).c_str());
          double act = 0;
          int in_flight = 0;
          for (GptModel* m : chunks) act += double(m->activation_bytes()), in_flight = std::max(in_flight, m->slots());
          std::printf("%s\n", format_activations_line(g_rank, in_flight, act / 1048576.0).c_str());
          memory_reported = true;
        }
        say_last(timers.log_line(double(loss_count)));
        report_profile(iteration);
        loss_acc = 0;
        loss_count = 0;
        skipped = nan_iterations = stepped = 0;
        interval_start = Clock::now();
      }
      if (a.save_interval > 0 && iteration % a.save_interval == 0 && iteration < a.train_iters) save();
      if (iteration % a.eval_interval == 0 && iteration < a.train_iters) {
        run_validation("iteration " + std::to_string(iteration));
        interval_start = Clock::now();
      }
      if (const std::string why = iteration < a.train_iters ? exit_reason() : ""; !why.empty()) {
        save();
        if (saver) saver->finish();
        say("exiting program " + why);
        return 0;
      }
    }
    say("[after training is done] datetime: " + now_timestamp());
    if (!a.profile_layers_output.empty() && grid.dp_rank() == 0 && grid.tp_rank() == 0) {
      // Average forward ms per call of every layer, all stages merged by stage 0.
      std::string mine;
      for (const auto& [label, v] : profile_sum)
        mine += (mine.empty() ? "" : ",") + ("\"" + label + "\": " + std::to_string(v.first / std::max(1, v.second)));
      const auto parts = dist::gather_strings(*grid.pipeline(), mine, 0);
      if (grid.pp_rank() == 0) {
        std::string all;
        for (const auto& part : parts)
          if (!part.empty()) all += (all.empty() ? "" : ",\n  ") + part;
        write_file_atomic(a.profile_layers_output, "{\n  " + all + "\n}\n");
        std::printf(" > per-layer forward costs written to %s\n", a.profile_layers_output.c_str());
      }
    }
    if (!a.pipeline_trace.empty() && trainer.pipeline() && grid.dp_rank() == 0 && grid.tp_rank() == 0) {
      trainer.pipeline()->write_trace(a.pipeline_trace);
      if (grid.pp_rank() == 0) {
        std::printf(" > pipeline trace written to %s\n", a.pipeline_trace.c_str());
        std::fflush(stdout);
      }
    }
    save();
    if (saver) saver->finish();
  }
  run_validation("iteration " + std::to_string(iteration) + " on validation set");
  if (a.eval_iters > 0 && test_set.size > 0) {
    double loss = trainer.evaluate(test_set, 0, a.eval_iters);
    say_last(format_validation_block("iteration " + std::to_string(iteration) + " on test set", loss));
  }
  return 0;
}

}  // namespace loom::cmd
