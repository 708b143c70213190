// The command lines of `loom preprocess`, `loom make-images` and `loom generate`: the input's first line names
// the subcommand, each further line is one argument (a line may be empty). They go through the commands' own
// parsers (parse_preprocess_args, parse_make_images_args, parse_generate_args) and, for make-images, the check of its
// configuration that runs before anything is written (check_synthetic_images_config; it only looks at
// --output). `loom train`'s flags are fuzz_command_line's.
#include <unistd.h>

#include "fuzz_util.h"
#include "loom/data/make_images_args.h"
#include "loom/data/preprocess_args.h"
#include "loom/generate/generate_args.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  std::vector<std::string> lines;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty() && lines.size() < 65) {
    const size_t nl = in.find('\n');
    lines.emplace_back(in.substr(0, nl));
    if (nl == std::string_view::npos) break;
    in.remove_prefix(nl + 1);
  }
  if (lines.empty()) return 0;
  std::vector<char*> argv;
  for (size_t i = 1; i < lines.size(); i++) argv.push_back(lines[i].data());
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
    }
  });
  return 0;
}
