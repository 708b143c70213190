// Trains a small GPT for a number of iterations under whatever layout mpirun and the flags give
// (data parallel x tensor parallel, sequence parallel, bucketed overlapped gradient reduction) and
// writes what must not depend on the layout: the loss and grad norm of every iteration and the final
// weights (full tensors). test_layouts.sh compares every layout with one process. Pipelines also report
// each stage's measured peak of micro-batches in flight and whether any chunk outgrew its slots.
//   mpirun -np 4 gpt_layout_driver --tp 2 --sp 1 --iters 20 --out out.safetensors
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/allocator.h"
#include "loom/core/rng.h"
#include "loom/dist/communicator.h"
#include "loom/models/decoder_model.h"
#include "loom/parallel/data_parallel.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/pipeline_runner.h"
#include "loom/train/trainer.h"

using namespace loom;

int main(int argc, char** argv) {
  int lamb = 0, sgd = 0, zero = 0, global_batch = 8, tp_size = 1, sp = 0, iters = 20, bucket = 20000, overlap = 1, pp_size = 1, vpp = 1, layers = 2, max_in_flight = 0;
  int post_ln = 0, fp32_residual = 0;
  std::string schedule = "1f1b", arch = "gpt", precision = "fp32", recompute;
  float dropout = 0;
  std::string out;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--tp") tp_size = std::atoi(argv[i + 1]);
    else if (a == "--sp") sp = std::atoi(argv[i + 1]);
    else if (a == "--iters") iters = std::atoi(argv[i + 1]);
    else if (a == "--bucket") bucket = std::atoi(argv[i + 1]);
    else if (a == "--overlap") overlap = std::atoi(argv[i + 1]);
    else if (a == "--dropout") dropout = float(std::atof(argv[i + 1]));
    else if (a == "--pp") pp_size = std::atoi(argv[i + 1]);
    else if (a == "--vpp") vpp = std::atoi(argv[i + 1]);
    else if (a == "--layers") layers = std::atoi(argv[i + 1]);
    else if (a == "--schedule") schedule = argv[i + 1];
    else if (a == "--max-in-flight") max_in_flight = std::atoi(argv[i + 1]);
    else if (a == "--global-batch") global_batch = std::atoi(argv[i + 1]);
    else if (a == "--zero") zero = std::atoi(argv[i + 1]);
    else if (a == "--lamb") lamb = std::atoi(argv[i + 1]);
    else if (a == "--sgd") sgd = std::atoi(argv[i + 1]);  // torch.optim.SGD, momentum 0.9
    else if (a == "--arch") arch = argv[i + 1];
    else if (a == "--precision") precision = argv[i + 1];
    else if (a == "--post-ln") post_ln = std::atoi(argv[i + 1]);
    else if (a == "--fp32-residual") fp32_residual = std::atoi(argv[i + 1]);
    else if (a == "--recompute") recompute = argv[i + 1];
    else if (a == "--out") out = argv[i + 1];
  }
  auto world = dist::Communicator::world();
  parallel::ProcessGrid grid(world, tp_size, 1, pp_size);
  TensorParallel tp{grid.tensor(), grid.tp_rank(), grid.tp_size(), sp != 0};

  ModelConfig c;
  c.num_layers = layers;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.ffn_hidden_size = 64;
  c.seq_length = 16;
  c.max_position_embeddings = 16;
  c.vocab_size = 250;
  c.padded_vocab_size = 256;
  c.hidden_dropout = c.attention_dropout = dropout;
  c.init_method_std = 0.05f;
  if (arch == "llama" || arch == "llama-bias") {  // Llama's settings of the same decoder: 8 heads in 2 key/value groups
    c.num_attention_heads = 8;
    c.num_query_groups = 2;
    c.normalization = NormKind::RMSNorm;
    c.activation = ActivationKind::SwiGlu;
    c.position_embedding = PositionKind::Rope;
    c.rope.llama3_scaling = true;
    c.rope.original_max_position = 8;
    c.add_bias_linear = arch == "llama-bias";  // llama-bias: HF's attention_bias + mlp_bias (SwiGLU with biases)
    c.add_qkv_bias = c.add_bias_linear;
    c.tie_embeddings = false;
  } else if (arch != "gpt") {
    std::fprintf(stderr, "unknown --arch %s\n", arch.c_str());
    return 2;
  }
  if (precision == "bf16") c.activation_dtype = DType::BF16;
  c.apply_residual_connection_post_layernorm = post_ln != 0;
  c.fp32_residual = fp32_residual != 0;
  c.recompute_granularity = recompute;  // "", selective or full (uniform: every block)
  const int micro = 2;
  const int dp = grid.dp_size();
  const int M = global_batch / (micro * dp);
  PipelineLayout pl{grid.pipeline(), grid.pp_rank(), pp_size, vpp, parse_pipeline_schedule(schedule), max_in_flight};
  std::vector<std::unique_ptr<DecoderModel>> models;
  std::vector<std::unique_ptr<AdamW>> optims;
  std::vector<std::unique_ptr<GradReducer>> reducers;
  std::vector<DecoderModel*> chunks;
  std::vector<AdamW*> opts;
  const auto specs = decoder_pipeline_chunks(layers, pp_size, vpp, grid.pp_rank());
  for (size_t i = 0; i < specs.size(); i++) {
    const int slots = pp_size > 1 ? PipelineRunner::slots_needed(pl, M, int(i)) : 1;
    StageSpec spec = specs[i];
    spec.defer_weight_grads = PipelineRunner::splits_backward(pl);
    ParamStorage storage;
    if (precision == "bf16") storage.weights = DType::BF16;
    if (zero > 0 && dp > 1) {
      storage.zero_group = grid.data();
      storage.shard_grads = zero >= 2;
      storage.shard_weights = zero >= 3;
    }
    models.push_back(std::make_unique<DecoderModel>(c, micro, c.seq_length, slots, tp, spec, storage));
    models.back()->init(42);
    AdamWOptions ao{0.9, 0.95, 1e-8, 0.1};
    if (lamb) ao.kind = OptimizerKind::Lamb;
    if (sgd) ao.kind = OptimizerKind::Sgd;
    optims.push_back(std::make_unique<AdamW>(models.back()->params(), ao, tp.comm));
    if (precision == "bf16") optims.back()->reset_main_weights();  // fp32 main weights from the bf16 init
    reducers.push_back(std::make_unique<GradReducer>(*models.back(), grid.data(), bucket, overlap != 0 && pp_size == 1));
    chunks.push_back(models.back().get());
    opts.push_back(optims.back().get());
  }
  LrSchedule ls;
  ls.max_lr = sgd ? 0.3 : 3e-3;  // SGD's steps at SGD's scale: the weights move as far as under AdamW
  ls.min_lr = sgd ? 0.03 : 3e-4;
  ls.style = "cosine";
  ls.warmup_steps = 2.0 * global_batch;
  ls.decay_steps = int64_t(iters) * global_batch;
  LrScheduler sched(ls);
  Timers timers;
  TrainStepOptions so;
  so.micro_batch = micro;
  so.num_micro_batches = M;
  so.seq = c.seq_length;
  so.clip_grad = 0.5;  // small enough to clip: the norm must be right for the update to be
  so.seed = 7;
  so.dp = grid.data();
  so.dp_rank = grid.dp_rank();
  so.dp_size = dp;
  for (auto& r : reducers) so.reducers.push_back(r.get());
  so.model_parallel = grid.group(parallel::GroupKind::Model);
  so.embedding = grid.group(parallel::GroupKind::Embedding);
  so.pipeline = pl;
  Trainer trainer(chunks, opts, sched, so, timers);
  SampleSet data;
  data.size = 1 << 20;
  data.get = [&](int64_t idx, int32_t* tok) {
    Rng r(stream_key(11, uint64_t(idx)));
    for (int t = 0; t <= c.seq_length; t++) tok[t] = int32_t(r.next_u32() % 50u) + ((t % 3) ? 0 : 100);
  };
  std::vector<float> losses, norms;
  for (int it = 0; it < iters; it++) {
    StepResult r = trainer.train_step(data, int64_t(it) * global_batch, it);
    losses.push_back(float(r.loss));
    norms.push_back(float(r.grad_norm));
  }
  // Per stage: the peak of micro-batches in flight, the cap it ran under, and chunks that outgrew their slots.
  std::vector<int32_t> peaks(size_t(pp_size), 0), caps(size_t(pp_size), 0);
  int32_t over_slots = 0, reordered = 0;
  if (PipelineRunner* r = trainer.pipeline()) {
    peaks[size_t(grid.pp_rank())] = r->peak_in_flight();
    caps[size_t(grid.pp_rank())] = PipelineRunner::in_flight_cap(pl, M);
    for (size_t i = 0; i < chunks.size(); i++) over_slots += r->peak_live(int(i)) > chunks[i]->slots();
    reordered = r->reordered_iterations();
  }
  world->all_reduce(peaks.data(), peaks.size(), dist::ReduceOp::Max);
  world->all_reduce(caps.data(), caps.size(), dist::ReduceOp::Max);
  world->all_reduce(&over_slots, 1);
  world->all_reduce(&reordered, 1);
  std::string peak_text, cap_text;
  for (int s = 0; s < pp_size; s++) {
    peak_text += (s ? "," : "") + std::to_string(peaks[size_t(s)]);
    cap_text += (s ? "," : "") + std::to_string(caps[size_t(s)]);
  }
  // The loss lives on the last stage: world rank 0 reports it.
  if (pp_size > 1) {
    if (grid.pp_rank() == pp_size - 1 && grid.tp_rank() == 0 && grid.dp_rank() == 0)
      world->send(losses.data(), losses.size(), 0, 77);
    parallel::GridLayout::Coord last_stage;
    last_stage.pp = pp_size - 1;
    if (world->rank() == 0) world->recv(losses.data(), losses.size(), grid.layout().rank_of(last_stage), 77);
  }
  // Full weights: every stage of the first data-parallel replica writes its part (tensor-parallel
  // shards gathered); world rank 0 merges them.
  const std::string weights = out + ".weights.pp" + std::to_string(grid.pp_rank());
  for (size_t i = 0; i < chunks.size(); i++) {
    chunks[i]->params().acquire_full();  // ZeRO-3: a collective over the data-parallel group
    if (grid.dp_rank() == 0) save_weights(weights + "." + std::to_string(i), chunks[i]->params(), {}, tp);
    chunks[i]->params().release_full();
  }
  world->barrier();
  if (world->rank() == 0) {
    std::vector<std::unique_ptr<SafetensorsFile>> files;
    std::vector<TensorEntry> entries;
    for (int s = 0; s < pp_size; s++)
      for (int i = 0; i < vpp; i++) {
        files.push_back(std::make_unique<SafetensorsFile>(out + ".weights.pp" + std::to_string(s) + "." + std::to_string(i)));
        for (auto e : files.back()->tensors()) {
          e.name = "final." + e.name;
          entries.push_back(e);
        }
        std::remove(files.back()->path().c_str());
      }
    entries.push_back({"loss", DType::F32, {iters}, losses.data(), losses.size() * 4});
    entries.push_back({"grad_norm", DType::F32, {iters}, norms.data(), norms.size() * 4});
    write_safetensors(out, entries);
    std::printf("layout dp=%d tp=%d pp=%d vpp=%d %s sp=%d zero=%d buckets=%d slots=%d peak_allocated_mb=%.3f "
                "optimizer_state_floats=%lld of %lld weight_floats=%lld grad_floats=%lld in_flight=%s cap=%s outgrown_chunks=%d reordered=%d: "
                "loss %.6f -> %.6f\n",
                dp, tp_size, pp_size, vpp, schedule.c_str(), sp, zero, reducers[0]->num_buckets(), chunks[0]->slots(),
                double(memory_stats().max_allocated) / 1048576.0,
                (long long)(opts[0]->state_bytes() / 4), (long long)(2 * chunks[0]->params().numel()),
                (long long)(chunks[0]->params().weight_bytes() / 4), (long long)(chunks[0]->params().grad_bytes() / 4),
                peak_text.c_str(), cap_text.c_str(), int(over_slots), int(reordered), losses.front(), losses.back());
  }
  return 0;
}
