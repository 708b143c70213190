// DeepSpeed JSON (--deepspeed-config FILE): the input is the file. It goes through TrainArgs::validate()
// and validate_layout() exactly as `loom train` runs them, after a valid set of model flags.
#include "fuzz_util.h"
#include "loom/train/arguments.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const std::string path = fuzz::write_scratch("ds_config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_user_errors_only([&] {
    ArgParser p("loom train", "fuzz");
    TrainArgs a;
    a.register_flags(p);
    // As cmd_train gets them: the arguments after `loom train`.
    std::vector<std::string> args = {"--num-layers", "2",  "--hidden-size", "8",  "--num-attention-heads",
                                     "2",           "--seq-length", "16",     "--train-iters", "10", "--lr",
                                     "0.001",       "--deepspeed-config", path};
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    if (!TrainArgs::parse(p, int(argv.size()), argv.data())) return;
    a.validate(p, /*need_data=*/false);
    a.validate_layout(1);
    a.validate_layout(2);
  });
  return 0;
}
