// RankLossCheck under mpirun: rank r's local loss is argv[1 + r] (a C99 float: "1.5", "nan", "inf",
// "-inf", hex floats). Every rank prints `rank R: mean=<%.17g> losses=<%a ...> line=[<warning line>]`.
//   mpirun -np N rank_losses_driver LOSS_0 ... LOSS_{N-1}
#include <cstdio>
#include <cstdlib>
#include <string>

#include "loom/dist/communicator.h"
#include "loom/train/rank_losses.h"

using namespace loom;

int main(int argc, char** argv) {
  auto comm = dist::Communicator::world();
  if (argc != comm->size() + 1) {
    std::fprintf(stderr, "usage: rank_losses_driver LOSS per rank\n");
    return 2;
  }
  RankLossCheck check(comm.get());
  // Twice with different values: the buffer is reused, nothing of the first call remains.
  check.gather(12345.0f);
  check.gather(std::strtof(argv[1 + comm->rank()], nullptr));
  std::string losses;
  for (float v : check.losses()) {
    char b[64];
    std::snprintf(b, sizeof b, "%s%a", losses.empty() ? "" : " ", double(v));
    losses += b;
  }
  std::printf("rank %d: mean=%.17g losses=%s line=[%s]\n", comm->rank(), check.mean(), losses.c_str(),
              check.warning_line().c_str());
  return 0;
}
