// Test driver for Megatron's random sampler (--dataloader-type cyclic). Used by
// tests/parity/test_cyclic_sampler.py; not installed. Errors print `loom: error: ...` and exit 2.
//
//   sampler_probe randperm <seed> <n>
//       torch.randperm(n) after manual_seed(seed), one index a line
//   sampler_probe order <total> <micro_batch> <dp_size> <data_sharding 0|1> <consumed> <steps>
//       for each of <steps> steps from <consumed> samples (one micro-batch per rank each) and each rank:
//       a line with the rank's micro-batch, read at Megatron's sequential positions
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/data/random_sampler.h"

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    auto num = [&](int i) { return std::strtoll(argv[i], nullptr, 10); };
    if (cmd == "randperm" && argc == 4) {
      std::vector<int64_t> p;
      loom::data::torch_randperm(uint64_t(num(2)), num(3), p);
      for (int64_t v : p) std::printf("%lld\n", static_cast<long long>(v));
      return 0;
    }
    if (cmd == "order" && argc == 8) {
      loom::data::RandomSamplerConfig c;
      c.total_samples = num(2);
      c.micro_batch = num(3);
      c.dp_size = num(4);
      c.data_sharding = num(5) != 0;
      loom::data::MegatronRandomSampler s(c);
      const int64_t step = c.micro_batch * c.dp_size;
      for (int64_t k = 0; k < num(7); k++) {
        const int64_t consumed = num(6) + k * step;
        for (int64_t r = 0; r < c.dp_size; r++) {
          for (int64_t b = 0; b < c.micro_batch; b++)
            std::printf("%s%lld", b ? " " : "", static_cast<long long>(s.index(consumed + r * c.micro_batch + b)));
          std::printf("\n");
        }
      }
      return 0;
    }
    loom::fail("usage: sampler_probe randperm SEED N | order TOTAL MICRO DP SHARDING CONSUMED STEPS");
  } catch (const loom::UserError& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
