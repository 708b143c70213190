#!/usr/bin/python3
"""--dataloader-type cyclic: Loom's sampler (tests/parity/sampler_probe) against a Python transcription of
Megatron-LM's MegatronPretrainingRandomSampler (megatron/legacy/data/data_samplers.py), drawn with torch's
own generator, so the sample order is compared with what Megatron reads, index for index:

  epoch = consumed // active, active = total - total % (micro x dp); a torch.Generator seeded by the
  epoch; data sharding: rank r reads r x bucket + randperm(bucket)[offset // dp:], bucket =
  (total // (micro x dp)) x micro; without: randperm((total // micro) x micro)[offset:][r::dp]; batches of
  micro, consumed += micro x dp each; the loader is cycled (cyclic_iter), so each new pass re-enters
  __iter__ at the consumed samples it reached.

Checks: torch.randperm itself for many (seed, n); the order of every rank for several dp sizes, micro
batches, dataset sizes, both sharding modes, over several epochs from 0 and from resumed consumed
samples (a fresh sampler, as Megatron builds on --load); a dataset too small for one step: one error
line, exit 2. Needs $LOOM_BUILD_DIR. Exits non-zero on failure.
"""
import os
import subprocess
import sys

import torch

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
PROBE = os.path.join(BUILD, "tests", "sampler_probe")
FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class MegatronRandomSampler:
    """MegatronPretrainingRandomSampler, transcribed (the RandomSeedDataset branch does not apply to GPT)."""

    def __init__(self, total_samples, consumed_samples, micro_batch_size, data_parallel_rank,
                 data_parallel_size, data_sharding):
        self.total_samples = total_samples
        self.consumed_samples = consumed_samples
        self.micro_batch_size = micro_batch_size
        self.data_parallel_rank = data_parallel_rank
        self.data_parallel_size = data_parallel_size
        self.data_sharding = data_sharding
        self.micro_batch_times_data_parallel_size = micro_batch_size * data_parallel_size
        self.last_batch_size = total_samples % self.micro_batch_times_data_parallel_size

    def __iter__(self):
        active_total_samples = self.total_samples - self.last_batch_size
        self.epoch = self.consumed_samples // active_total_samples
        current_epoch_samples = self.consumed_samples % active_total_samples
        assert current_epoch_samples % self.micro_batch_times_data_parallel_size == 0
        if self.data_sharding:
            bucket_size = (self.total_samples // self.micro_batch_times_data_parallel_size) * self.micro_batch_size
            bucket_offset = current_epoch_samples // self.data_parallel_size
            start_idx = self.data_parallel_rank * bucket_size
            g = torch.Generator()
            g.manual_seed(self.epoch)
            random_idx = torch.randperm(bucket_size, generator=g).tolist()
            idx_range = [start_idx + x for x in random_idx[bucket_offset:]]
        else:
            full_bucket_size = (self.total_samples // self.micro_batch_size) * self.micro_batch_size
            full_bucket_offset = current_epoch_samples
            g = torch.Generator()
            g.manual_seed(self.epoch)
            idx_range_total = torch.randperm(full_bucket_size, generator=g).tolist()
            idx_range_active = idx_range_total[full_bucket_offset:]
            idx_range = idx_range_active[self.data_parallel_rank::self.data_parallel_size]
        batch = []
        for idx in idx_range:
            batch.append(idx)
            if len(batch) == self.micro_batch_size:
                self.consumed_samples += self.micro_batch_times_data_parallel_size
                yield batch
                batch = []


def cyclic_iter(it):  # megatron/training/training.py
    while True:
        for x in it:
            yield x


def megatron_order(total, micro, dp, sharding, consumed, steps):
    """Per step, per rank: the micro-batch each rank's cycled loader yields."""
    iters = [cyclic_iter(MegatronRandomSampler(total, consumed, micro, r, dp, sharding)) for r in range(dp)]
    return [[next(iters[r]) for r in range(dp)] for _ in range(steps)]


def probe(*args):
    return subprocess.run([PROBE] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def loom_order(total, micro, dp, sharding, consumed, steps):
    p = probe("order", total, micro, dp, int(sharding), consumed, steps)
    if p.returncode != 0:
        return p.stderr.strip()
    rows = [[int(x) for x in line.split()] for line in p.stdout.splitlines()]
    return [rows[k * dp:(k + 1) * dp] for k in range(steps)]


def main():
    if not os.access(PROBE, os.X_OK):
        print("sampler_probe not built:", PROBE)
        return 77
    # torch.randperm itself: mt19937 seeded by the generator's seed, Fisher-Yates with 32-bit draws.
    bad = []
    for seed in (0, 1, 2, 7, 1234, 2**32 + 5):
        for n in (0, 1, 2, 3, 10, 97, 1000, 65537):
            g = torch.Generator()
            g.manual_seed(seed)
            want = torch.randperm(n, generator=g).tolist()
            p = probe("randperm", seed, n)
            got = [int(x) for x in p.stdout.split()]
            if got != want:
                bad.append((seed, n))
    check(not bad, f"torch.randperm reproduced for 6 seeds x 8 sizes up to 65537 (mismatches: {bad[:3]})")

    # Sample order, from the start over several epochs, and from resumed consumed samples.
    cases = [  # total, micro, dp, sharding
        (50, 2, 1, True), (50, 2, 2, True), (103, 3, 4, True), (64, 4, 2, True), (1000, 4, 8, True),
        (50, 2, 1, False), (51, 2, 2, False), (103, 3, 4, False), (64, 4, 2, False), (1000, 4, 8, False),
        (14, 2, 4, True), (14, 2, 4, False),
    ]
    for total, micro, dp, sharding in cases:
        step = micro * dp
        active = total - total % step
        steps = 3 * active // step + 2  # three epochs and into the fourth
        # Without sharding, when (total // micro) x micro exceeds the active samples, Megatron's loader can
        # yield more micro-batches on the low ranks than an epoch holds, and the ranks' epochs drift apart
        # (each rank's sampler restarts on its own count). Loom reads what a sampler resumed at each step's
        # consumed samples reads (what Megatron reads after --load): where the cycled loader drifts, the
        # comparison is with those resumed samplers.
        for consumed in sorted({0, step, active - step, active, active + 3 * step, 2 * active + step}):
            want = megatron_order(total, micro, dp, sharding, consumed, steps)
            resumed = [[next(iter(MegatronRandomSampler(total, consumed + k * step, micro, r, dp, sharding)))
                        for r in range(dp)] for k in range(steps)]
            drift = want != resumed
            if drift:
                check(not sharding, f"total {total} micro {micro} dp {dp}: only the unsharded loader drifts")
                want = resumed
            got = loom_order(total, micro, dp, sharding, consumed, steps)
            check(got == want, f"total {total} micro {micro} dp {dp} {'sharded' if sharding else 'unsharded'}: "
                               f"{steps} steps from consumed {consumed} (epochs {consumed // active}.."
                               f"{(consumed + (steps - 1) * step) // active}) equal Megatron's"
                               + (" resumed samplers (its cycled loader drifts here)" if drift else ""))
    # Loom's order over a whole epoch is a permutation of the active samples (no sample twice).
    for sharding in (True, False):
        got = loom_order(103, 3, 4, sharding, 0, 8)
        flat = [i for s in got for r in s for i in r]
        check(len(set(flat)) == len(flat) == 96, f"one epoch reads 96 distinct samples ({'sharded' if sharding else 'unsharded'})")
    p = probe("order", 7, 2, 4, 1, 0, 1)
    check(p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("loom: error: ")
          and "fewer than one micro-batch" in p.stderr, "a dataset smaller than one step: one error line, exit 2")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
