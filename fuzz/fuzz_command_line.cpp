// `loom train` command line: the input is the argument list, one argument per line (a line may be
// empty). It is parsed by TrainArgs::parse() (with --model / --model-preset expansion) and checked by
// validate() and validate_layout(), as cmd_train does before anything is allocated. Flags naming files
// (--deepspeed-config, data, tokenizer) point at a scratch directory's non-existent files.
#include <unistd.h>

#include "fuzz_util.h"
#include "loom/train/arguments.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  std::vector<std::string> args = fuzz::input_lines(data, size, 256);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  // --help prints to stdout; keep the fuzzer's output readable.
  static const bool quiet = [] { return std::freopen("/dev/null", "w", stdout) != nullptr; }();
  (void)quiet;
  fuzz::expect_user_errors_only([&] {
    ArgParser p("loom train", "fuzz");
    TrainArgs a;
    a.register_flags(p);
    if (!TrainArgs::parse(p, int(argv.size()), argv.data())) return;
    a.validate(p, /*need_data=*/true);
    for (int world : {1, 2, 8}) a.validate_layout(world);
    (void)a.model_config(50257);
    (void)a.schedule();
    (void)format_arguments(p.dump());
  });
  return 0;
}
