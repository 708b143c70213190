#pragma once
// `loom bench`'s command line: its flags and the checks that need no measurement (tools/loom/cmd_bench.cpp
// measures; fuzz/fuzz_subcommand_args.cpp drives the parser).
#include <string>

namespace loom {

struct BenchArgs {
  bool calibrate = false;
  std::string output = "loom-hardware.json";  // the hardware file `loom plan --hardware FILE.json` reads
  std::string name = "calibrated";
  double seconds_per_kernel = 0.25;
  int largest_gemm = 2048;  // GEMM shapes above largest_gemm^3 multiply-adds are skipped
};

// Returns false when --help was printed (the command exits 0). Throws UserError naming the flag: no
// --calibrate, --seconds-per-kernel outside (0, 5], --largest-gemm under 128, an empty
// --output or --name. Whether --output can be written is the command's check (it touches the filesystem).
bool parse_bench_args(int argc, char** argv, BenchArgs& a);

}  // namespace loom
