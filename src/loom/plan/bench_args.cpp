#include "loom/plan/bench_args.h"

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

bool parse_bench_args(int argc, char** argv, BenchArgs& a) {
  ArgParser p("loom bench", "Measure this machine for 'loom plan --hardware FILE.json' (run under mpirun for the "
                            "links between ranks).");
  p.add_flag("--calibrate", &a.calibrate, "measure GEMMs, attention, memory bandwidth and (under mpirun) collectives");
  p.add_string("--output", &a.output, "the hardware file to write (written whole, or not at all)");
  p.add_string("--name", &a.name, "the name the file gives this machine");
  p.add_float("--seconds-per-kernel", &a.seconds_per_kernel, "measuring time per kernel and shape");
  p.add_int("--largest-gemm", &a.largest_gemm, "skip GEMM shapes of more than N^3 multiply-adds (quick, coarser tables)");
  p.add_example("mpirun -np 2 loom bench --calibrate --output this-machine.json");
  if (!p.parse(argc, argv)) return false;
  require(a.calibrate, "loom bench needs --calibrate");
  require(a.seconds_per_kernel > 0 && a.seconds_per_kernel <= 5, "--seconds-per-kernel must be in (0, 5]");
  require(a.largest_gemm >= 128, "--largest-gemm must be at least 128");
  require(!a.output.empty(), "--output must name a file");
  require(!a.name.empty(), "--name must not be empty");
  return true;
}

}  // namespace loom
