// `loom convert`: checkpoints into other formats (Hugging Face GPT-2 today).
#include <filesystem>

#include "commands.h"
#include "loom/ckpt/checkpoint.h"
#include "loom/ckpt/hf_export.h"
#include "loom/ckpt/model_weights.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/process_grid.h"
#include <fstream>
#include <nlohmann/json.hpp>
#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom::cmd {

int convert(int argc, char** argv) {
  std::string load, output, to = "hf";
  ArgParser p("loom convert", "Convert a checkpoint written by 'loom train --save' (any parallel layout).");
  p.add_string("--load", &load, "checkpoint directory (newest iteration) or iteration directory");
  p.add_choice("--to", &to, {"hf", "safetensors", "loom"},
               "hf: Hugging Face GPT-2 (config.json + model.safetensors); safetensors: full Megatron-named weights; "
               "loom: the checkpoint resharded offline into one shard (optimizer and training state kept)");
  p.add_string("--output", &output, "directory (hf) or file (safetensors) to write");
  p.add_example("loom convert --load runs/demo/checkpoints --to hf --output runs/demo/hf");
  p.add_example("loom convert --load runs/demo/checkpoints --to safetensors --output runs/demo/model.safetensors");
  p.add_example("loom convert --load runs/tp2pp2 --to loom --output runs/consolidated");
  if (!p.parse(argc, argv)) return 0;
  require(!load.empty(), "--load is required");
  require(!output.empty(), "--output is required");
  const std::string it = checkpoint_iteration_dir(load);
  const GptConfig cfg = gpt_config_from_metadata(checkpoint_info(it), it + "/metadata.json");
  GptModel model(cfg, 1, 1);  // activations for one token: only the weights matter here
  if (to == "loom") {
    // Offline resharding: read every slice into one full model and optimizer, write one shard.
    AdamW optimizer(model.params(), {});
    const auto info = checkpoint_info(it);
    nlohmann::json meta = nlohmann::json::parse(std::ifstream(it + "/metadata.json"));
    const bool with_optim = meta.value("has_optimizer", false);
    TrainState state = load_checkpoint(it, model, with_optim ? &optimizer : nullptr, {with_optim, false});
    optimizer.set_steps(state.optimizer_steps);
    parallel::ProcessGrid grid(dist::Communicator::world(), 1);
    CheckpointSaver saver(output, grid);
    SaveOptions so;
    so.save_optim = with_optim;
    so.info = info;
    saver.save(state, {&model}, {&optimizer}, so);
  } else {
    load_checkpoint(it, model, nullptr, {/*load_optim=*/false, /*finetune=*/true});
  }
  if (to == "hf") {
    export_hf_gpt2(model, output);
  } else if (to == "safetensors") {
    save_weights(output, model.params(), checkpoint_info(it));
  }
  std::printf("wrote %s (%s) from %s\n", output.c_str(), to.c_str(), it.c_str());
  return 0;
}

}  // namespace loom::cmd
