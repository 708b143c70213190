// Trains a small GPT for a number of iterations under whatever layout mpirun and the flags give
// (data parallel x tensor parallel, sequence parallel, bucketed overlapped gradient reduction) and
// writes what must not depend on the layout: the loss and grad norm of every iteration and the final
// weights (full tensors). test_layouts.sh compares every layout with one process.
//   mpirun -np 4 gpt_layout_driver --tp 2 --sp 1 --iters 20 --out out.safetensors
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/rng.h"
#include "loom/dist/communicator.h"
#include "loom/models/gpt.h"
#include "loom/parallel/data_parallel.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/trainer.h"

using namespace loom;

int main(int argc, char** argv) {
  int tp_size = 1, sp = 0, iters = 20, bucket = 20000, overlap = 1;
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
    else if (a == "--out") out = argv[i + 1];
  }
  auto world = dist::Communicator::world();
  parallel::ProcessGrid grid(world, tp_size);
  TensorParallel tp{grid.tensor(), grid.tp_rank(), grid.tp_size(), sp != 0};

  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.ffn_hidden_size = 64;
  c.seq_length = 16;
  c.max_position_embeddings = 16;
  c.vocab_size = 250;
  c.padded_vocab_size = 256;
  c.hidden_dropout = c.attention_dropout = dropout;
  c.init_method_std = 0.05f;
  const int global_batch = 8, micro = 2;
  const int dp = grid.dp_size();
  GptModel model(c, micro, c.seq_length, 1, tp);
  model.init(42);
  AdamW opt(model.params(), {0.9, 0.95, 1e-8, 0.1});
  LrSchedule ls;
  ls.max_lr = 3e-3;
  ls.min_lr = 3e-4;
  ls.style = "cosine";
  ls.warmup_steps = 2.0 * global_batch;
  ls.decay_steps = int64_t(iters) * global_batch;
  LrScheduler sched(ls);
  Timers timers;
  GradReducer reducer(model, grid.data(), bucket, overlap != 0);
  TrainStepOptions so;
  so.micro_batch = micro;
  so.num_micro_batches = global_batch / (micro * dp);
  so.seq = c.seq_length;
  so.clip_grad = 0.5;  // small enough to clip: the norm must be right for the update to be
  so.seed = 7;
  so.dp = grid.data();
  so.dp_rank = grid.dp_rank();
  so.dp_size = dp;
  so.reducer = &reducer;
  Trainer trainer(model, opt, sched, so, timers);
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
  // Full weights on the first data-parallel replica's tensor-parallel rank 0 = world rank 0.
  const std::string weights = out + ".weights";
  if (grid.dp_rank() == 0) save_weights(weights, model.params(), {}, tp);
  world->barrier();
  if (world->rank() == 0) {
    SafetensorsFile w(weights);
    std::vector<TensorEntry> entries = w.tensors();
    for (auto& e : entries) e.name = "final." + e.name;
    entries.push_back({"loss", DType::F32, {iters}, losses.data(), losses.size() * 4});
    entries.push_back({"grad_norm", DType::F32, {iters}, norms.data(), norms.size() * 4});
    write_safetensors(out, entries);
    std::remove(weights.c_str());
    std::printf("layout dp=%d tp=%d sp=%d buckets=%d: loss %.6f -> %.6f\n", dp, tp_size, sp, reducer.num_buckets(),
                losses.front(), losses.back());
  }
  return 0;
}
