// Training throughput of Loom on a GPT (or --arch llama) configuration: forward + backward + AdamW per iteration, fp32
// (or --precision bf16: bf16 weights, activations and GEMMs, fp32 main weights, as `loom train --bf16`),
// random tokens. Prints one JSON line, the same shape bench/torch_gpt.py prints, so bench/run.sh can
// put the two side by side.
//   gpt_step_bench --layers 12 --hidden 768 --heads 12 --seq 256 --micro-batch 4 --vocab 50304 --steps 5
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "loom/core/allocator.h"
#include "loom/core/rng.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/optim/lr_scheduler.h"
#include "loom/train/trainer.h"

using namespace loom;

int main(int argc, char** argv) {
  int layers = 12, hidden = 768, heads = 12, seq = 256, mb = 4, vocab = 50304, steps = 5, warmup = 2, threads = 0;
  int groups = 0, ffn = 0;
  std::string precision = "fp32", arch = "gpt";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--precision") precision = argv[i + 1];
    else if (a == "--arch") arch = argv[i + 1];
    else if (a == "--groups") groups = v;
    else if (a == "--ffn") ffn = v;
    else if (a == "--layers") layers = v;
    else if (a == "--hidden") hidden = v;
    else if (a == "--heads") heads = v;
    else if (a == "--seq") seq = v;
    else if (a == "--micro-batch") mb = v;
    else if (a == "--vocab") vocab = v;
    else if (a == "--steps") steps = v;
    else if (a == "--warmup") warmup = v;
    else if (a == "--threads") threads = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (threads > 0) omp_set_num_threads(threads);
  ModelConfig c;
  c.num_layers = layers;
  c.hidden_size = hidden;
  c.num_attention_heads = heads;
  c.ffn_hidden_size = ffn ? ffn : 4 * hidden;
  if (arch == "llama") {  // as bench/torch_gpt.py --arch llama: RMSNorm, RoPE, GQA, SwiGLU, no biases, untied
    c.normalization = NormKind::RMSNorm;
    c.activation = ActivationKind::SwiGlu;
    c.position_embedding = PositionKind::Rope;
    c.num_query_groups = groups;
    c.add_bias_linear = c.add_qkv_bias = false;
    c.tie_embeddings = false;
  } else if (arch != "gpt") {
    std::fprintf(stderr, "--arch must be gpt or llama\n");
    return 2;
  }
  c.seq_length = seq;
  c.max_position_embeddings = seq;
  c.vocab_size = vocab;
  c.padded_vocab_size = vocab;
  c.hidden_dropout = c.attention_dropout = 0;  // as the PyTorch peer
  ParamStorage storage;
  if (precision == "bf16") {
    c.activation_dtype = DType::BF16;
    storage.weights = DType::BF16;  // gradients fp32, as Megatron's bf16
  } else if (precision != "fp32") {
    std::fprintf(stderr, "--precision must be fp32 or bf16\n");
    return 2;
  }
  DecoderModel model(c, mb, seq, 1, {}, {}, storage);
  model.init(1234);
  AdamW opt(model.params(), {});
  opt.reset_main_weights();
  LrSchedule ls;
  ls.max_lr = 1e-4;
  ls.style = "constant";
  LrScheduler sched(ls);
  Timers timers;
  TrainStepOptions so;
  so.micro_batch = mb;
  so.seq = seq;
  Trainer trainer(model, opt, sched, so, timers);
  SampleSet data;
  data.size = 1 << 20;
  data.get = [&](int64_t idx, int32_t* out) {
    Rng r(stream_key(7, uint64_t(idx)));
    for (int t = 0; t <= seq; t++) out[t] = int32_t(r.next_u32() % uint32_t(vocab));
  };
  for (int s = 0; s < warmup; s++) trainer.train_step(data, int64_t(s) * mb, s);
  const int64_t allocs_before = memory_stats().num_allocs;
  timers.reset();
  auto t0 = std::chrono::steady_clock::now();
  double loss = 0;
  for (int s = 0; s < steps; s++) loss = trainer.train_step(data, int64_t(warmup + s) * mb, warmup + s).loss;
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t allocs = memory_stats().num_allocs - allocs_before;
  const double tokens = double(steps) * mb * seq;
  const double flops = decoder_flops_per_iteration(c, mb) * steps;
  std::printf("{\"impl\": \"loom\", \"tokens_per_s\": %.2f, \"step_ms\": %.2f, \"tflops\": %.5f, \"loss\": %.5f, "
              "\"params\": %lld, \"threads\": %d, \"tensor_allocs_in_timed_steps\": %lld, \"fwd_ms\": %.2f, "
              "\"bwd_ms\": %.2f, \"opt_ms\": %.2f, \"precision\": \"%s\"}\n",
              tokens / sec, 1000.0 * sec / steps, flops / sec / 1e12, loss, (long long)decoder_total_params(c),
              omp_get_max_threads(), (long long)allocs, timers.elapsed_ms("forward-compute") / steps,
              timers.elapsed_ms("backward-compute") / steps, timers.elapsed_ms("optimizer") / steps, precision.c_str());
  return 0;
}
