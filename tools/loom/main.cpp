// The `loom` command: dispatches to a subcommand and turns every UserError into one
// `loom: error: ...` line with exit code 2 (under mpirun: dist::exit_after_error, so that an error on
// one rank also ends its peers).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"train", loom::cmd::train, "train a GPT or Llama model (Megatron and DeepSpeed flags), or CoCa (--model coca, EVA-CLIP flags)"},
    {"generate", loom::cmd::generate, "sample text from trained weights"},
    {"convert", loom::cmd::convert, "export, import or reshard weights (Hugging Face GPT-2/Llama, safetensors, one-shard loom)"},
    {"plan", loom::cmd::plan, "counts, memory, predicted step time and the best layout (--search), without allocating"},
    {"preprocess", loom::cmd::preprocess, "tokenise JSONL into a Megatron indexed dataset (.bin/.idx)"},
    {"make-images", loom::cmd::make_images, "render the synthetic image-caption set (shapes, colours, counts) for CoCa/CLIP"},
    {"report", loom::cmd::report, "training logs (Megatron, DeepSpeed, EVA-CLIP, Loom) to CSV and HTML charts"},
    {"bench", loom::cmd::bench, "measure this machine for 'loom plan --hardware FILE.json' (--calibrate)"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: loom <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'loom <command> --help' shows a command's options and examples.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const loom::UserError& e) {
      loom::dist::exit_after_error(e.what(), 2);
      return 2;
    } catch (const std::bad_alloc&) {
      loom::dist::exit_after_error("out of memory", 1);
      return 1;
    } catch (const std::exception& e) {
      loom::dist::exit_after_error(std::string("internal: ") + e.what(), 1);
      return 1;
    }
  }
  std::fprintf(stderr, "loom: error: unknown command '%s' (see 'loom --help')\n", argv[1]);
  return 2;
}
