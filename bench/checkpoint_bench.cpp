// Checkpoint throughput on the GPT-2 124M model with AdamW state (about 1.5 GB): synchronous save, load,
// and how much of an asynchronous save the training step still sees (the snapshot copy).
//   checkpoint_bench DIR      prints one JSON line
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "loom/ckpt/checkpoint.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/process_grid.h"

using namespace loom;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string dir = argv[1];
  ModelConfig c;  // GPT-2 124M
  c.num_layers = 12;
  c.hidden_size = 768;
  c.num_attention_heads = 12;
  c.ffn_hidden_size = 3072;
  c.seq_length = c.max_position_embeddings = 1024;
  c.vocab_size = 50257;
  c.padded_vocab_size = 50304;
  auto world = dist::Communicator::world();
  parallel::ProcessGrid grid(world, 1);
  DecoderModel model(c, 1, 1);
  model.init(1);
  AdamW opt(model.params(), {});
  const double bytes = double(model.params().numel()) * 4 * 3;  // weights + two moments
  CheckpointSaver saver(dir, grid);
  SaveOptions so;
  TrainState st;
  st.iteration = 1;
  auto t = Clock::now();
  saver.save(st, {&model}, {&opt}, so);
  const double save_s = since(t);
  t = Clock::now();
  load_checkpoint(dir, model, &opt, {});
  const double load_s = since(t);
  // Async: the call returns after the snapshot; the rest overlaps the (simulated) next steps.
  so.async = true;
  st.iteration = 2;
  t = Clock::now();
  saver.save(st, {&model}, {&opt}, so);
  const double async_blocking_s = since(t);
  saver.finish();
  const double async_total_s = since(t);
  std::printf("{\"bytes\": %.0f, \"save_s\": %.3f, \"save_mb_s\": %.1f, \"load_s\": %.3f, \"load_mb_s\": %.1f, "
              "\"async_blocking_s\": %.3f, \"async_total_s\": %.3f, \"hidden_fraction\": %.3f}\n",
              bytes, save_s, bytes / save_s / 1048576.0, load_s, bytes / load_s / 1048576.0, async_blocking_s,
              async_total_s, 1.0 - async_blocking_s / save_s);
  return 0;
}
