// The command lines of `loom preprocess`, `make-images`, `generate`, `convert`, `report`, `bench`, `plan` (GPT/Llama and
// --model coca) and `train --model coca`: the input's first line names the subcommand, each further line is one
// argument (a line may be empty). They go through the commands' own parsers and the checks each command makes
// before its work: parse_preprocess_args; parse_make_images_args with check_synthetic_images_config (it only
// looks at --output); parse_generate_args; parse_convert_args; parse_report_args; parse_bench_args; for plan, TrainArgs and
// PlanArgs as cmd_plan registers them, validate() and the device (--hardware); for CoCa, CocaArgs with the
// tower-flag check, the DeepSpeed config and validate(). `loom train`'s GPT/Llama flags are fuzz_command_line's.
// For the commands that read a file here (plan's --hardware FILE, CoCa's --deepspeed-config), an argument with a
// '/' skips the input: they read only files of the working directory, never /dev/zero or a FIFO.
#include <unistd.h>

#include "fuzz_util.h"
#include "loom/ckpt/convert_args.h"
#include "loom/data/make_images_args.h"
#include "loom/data/preprocess_args.h"
#include "loom/generate/generate_args.h"
#include "loom/plan/bench_args.h"
#include "loom/plan/plan_args.h"
#include "loom/report/report_args.h"
#include "loom/train/coca_args.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  std::vector<std::string> lines = fuzz::input_lines(data, size, 65);
  if (lines.empty()) return 0;
  std::vector<char*> argv;
  bool names_a_path = false;
  for (size_t i = 1; i < lines.size(); i++) {
    names_a_path = names_a_path || lines[i].find('/') != std::string::npos;
    argv.push_back(lines[i].data());
  }
  const bool reads_files = lines[0] == "plan" || lines[0] == "coca-plan" || lines[0] == "coca-train";
  if (reads_files && names_a_path) return 0;
  // --help prints to stdout; keep the fuzzer's output readable.
  static const bool quiet = [] { return std::freopen("/dev/null", "w", stdout) != nullptr; }();
  (void)quiet;
  fuzz::expect_user_errors_only([&] {
    if (lines[0] == "preprocess") {
      data::PreprocessConfig cfg;
      (void)data::parse_preprocess_args(int(argv.size()), argv.data(), cfg);
    } else if (lines[0] == "make-images") {
      data::SyntheticImagesConfig cfg;
      if (data::parse_make_images_args(int(argv.size()), argv.data(), cfg)) data::check_synthetic_images_config(cfg);
    } else if (lines[0] == "generate") {
      GenerateArgs a;
      (void)parse_generate_args(int(argv.size()), argv.data(), a);
    } else if (lines[0] == "convert") {
      ConvertArgs a;
      (void)parse_convert_args(int(argv.size()), argv.data(), a);
    } else if (lines[0] == "report") {
      report::ReportArgs a;
      (void)report::parse_report_args(int(argv.size()), argv.data(), a);
    } else if (lines[0] == "bench") {
      BenchArgs a;
      (void)parse_bench_args(int(argv.size()), argv.data(), a);
    } else if (lines[0] == "plan") {  // cmd_plan.cpp up to its first output
      TrainArgs a;
      ArgParser p("loom plan", "fuzz");
      a.register_flags(p);
      PlanArgs pa;
      pa.register_flags(p);
      if (!TrainArgs::parse(p, int(argv.size()), argv.data())) return;
      a.validate(p, /*need_data=*/false);
      pa.validate();
      if (!pa.hardware.empty()) (void)pa.device();
      a.validate_layout(pa.world_size > 0 ? pa.world_size
                                          : a.tensor_model_parallel_size * a.pipeline_model_parallel_size *
                                                a.context_parallel_size);
      (void)layout_from_args(a);
    } else if (lines[0] == "coca-plan" || lines[0] == "coca-train") {  // cmd_plan_coca.cpp, cmd_train_coca.cpp
      CocaArgs a;
      ArgParser p("loom train --model coca", "fuzz");
      a.register_flags(p);
      int world_size = 1;
      if (lines[0] == "coca-plan") p.add_int("--world-size", &world_size, "");
      const std::vector<std::string> args(lines.begin() + 1, lines.end());
      if (lines[0] == "coca-train") CocaOptimizerArgs::check_tower_flags(p, args);
      if (!p.parse(int(argv.size()), argv.data())) return;
      if (lines[0] == "coca-train") {
        world_size = 2;  // as CocaRun::setup on two ranks
        a.apply_deepspeed_config(p, world_size);
      }
      a.validate(world_size);
      (void)coca_parameter_counts(a.shape);
    }
  });
  return 0;
}
