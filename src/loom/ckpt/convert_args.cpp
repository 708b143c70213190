#include "loom/ckpt/convert_args.h"

#include <cstring>
#include <vector>

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

bool parse_convert_args(int argc, char** argv, ConvertArgs& a) {
  // `--from hf DIR`: the directory follows the format; taken out before the flags are parsed.
  std::vector<char*> args(argv, argv + argc);
  for (size_t i = 0; i + 2 < args.size(); i++)
    if (std::strcmp(args[i], "--from") == 0 && std::strncmp(args[i + 2], "--", 2) != 0) {
      a.hf_dir = args[i + 2];
      args.erase(args.begin() + long(i) + 2);
      break;
    }
  ArgParser p("loom convert",
              "Convert a checkpoint written by 'loom train --save' (any parallel layout) to another format, or a "
              "Hugging Face Llama (--from hf DIR) into a weights file for 'loom train --load'.");
  p.add_string("--load", &a.load, "checkpoint directory (newest iteration) or iteration directory");
  p.add_choice("--to", &a.to, {"hf", "safetensors", "loom"},
               "hf: Hugging Face (GPT-2 or Llama, from the model: config.json + model.safetensors); safetensors: "
               "full Megatron-named weights; loom: the checkpoint resharded offline into one shard (optimizer and "
               "training state kept)");
  p.add_choice("--from", &a.from, {"hf"},
               "hf DIR: a Hugging Face LlamaForCausalLM directory (config.json, model.safetensors or "
               "model.safetensors.index.json with its shards; bf16/fp16/fp32), written as one .safetensors of "
               "Loom-named full weights that 'loom train --load FILE' reads into any parallel layout");
  p.add_int("--make-vocab-size-divisible-by", &a.divisible_by,
            "--from hf: pad the vocabulary with zero rows to a multiple of this (other layouts re-pad on load)");
  p.add_string("--output", &a.output, "directory (hf, loom) or file (safetensors, --from hf) to write; it must not exist "
               "yet (a directory may be empty) unless --overwrite");
  p.add_flag("--overwrite", &a.overwrite, "replace an existing --output file, or write into a non-empty --output directory");
  p.add_example("loom convert --load runs/demo/checkpoints --to hf --output runs/demo/hf");
  p.add_example("loom convert --load runs/demo/checkpoints --to safetensors --output runs/demo/model.safetensors");
  p.add_example("loom convert --load runs/tp2pp2 --to loom --output runs/consolidated");
  p.add_example("loom convert --from hf models/Llama-3.2-1B --output runs/llama.safetensors   "
                "(then: loom train --model-preset llama3.2-1b ... --load runs/llama.safetensors)");
  if (!p.parse(int(args.size()), args.data())) return false;
  require(!a.output.empty(), "--output is required");
  if (!a.from.empty()) {
    require(!a.hf_dir.empty(), "--from hf needs the model directory: --from hf DIR");
    require(a.load.empty(), "--from hf and --load are two directions: give one");
    require(a.divisible_by > 0, "--make-vocab-size-divisible-by must be positive");
  } else {
    require(!a.load.empty(), "--load is required (or --from hf DIR)");
  }
  return true;
}

}  // namespace loom
