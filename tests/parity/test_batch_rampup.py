#!/usr/bin/python3
"""Loom's batch-size ramp-up (loom/train/batch_rampup.h, through tests/parity/rampup_driver.cpp) against a
Python transcription of Megatron-LM's micro-batch calculators (megatron/core/num_microbatches_calculator.py,
ConstantNumMicroBatchesCalculator and RampupBatchsizeNumMicroBatchesCalculator, before the step schedules
replaced them) and of training.py's use of them:

  update_train_iters: the ramp-up phase counted iteration by iteration (consumed += current global batch while
      consumed <= ramp-up samples and <= train samples), then (train_samples - consumed) // global batch;
  train(): each iteration update_num_microbatches(consumed, consistency_check=True), then
      consumed += micro x dp x num_microbatches.

Over many (global, micro, dp, decrease, start, increment, samples, train samples) cases every iteration's
(global batch, running batch, micro-batches) must be equal, and the cases Megatron rejects (its assertions and
its divisions by zero) must be the cases Loom refuses. One difference is deliberate: under
--decrease-batch-size-if-needed a batch rounded down to 0 micro-batches would leave Megatron's consumed
samples stuck (its schedule still runs one micro-batch); Loom refuses it, and so does the transcription here.
Needs $LOOM_BUILD_DIR. Exits non-zero on failure.
"""

import os
import random
import subprocess
import sys

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
DRIVER = os.path.join(BUILD, "tests", "rampup_driver")
FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class Refused(Exception):
    pass


def round_down(batch, divisor):
    return (batch // divisor) * divisor


class Constant:
    def __init__(self, global_batch, micro, dp, decrease):
        step = micro * dp
        if decrease:
            running = round_down(global_batch, step)
        else:
            assert global_batch % step == 0, "global batch not divisible"
            running = global_batch
        self.num_micro_batches = running // step
        assert self.num_micro_batches >= 1
        self.current_global_batch_size = global_batch
        self.current_running_global_batch_size = running

    def update(self, consumed, consistency_check):
        pass


class Rampup:
    def __init__(self, global_batch, micro, dp, decrease, start, increment, samples):
        assert global_batch > 0 and start > 0 and increment > 0 and samples >= 0
        self.global_batch, self.decrease = global_batch, decrease
        self.start, self.increment, self.samples = start, increment, samples
        self.step = micro * dp
        assert self.step > 0
        diff = global_batch - start
        assert diff >= 0
        assert diff % increment == 0
        self.per_increment = samples / (diff // increment)  # ZeroDivisionError when there is nothing to ramp
        self.current_global_batch_size = None
        self.update(0, consistency_check=False)

    def update(self, consumed, consistency_check):
        if consumed > self.samples:
            self.current_global_batch_size = self.global_batch
        else:
            steps = int(consumed / self.per_increment)  # ZeroDivisionError with 0 ramp-up samples
            self.current_global_batch_size = self.start + steps * self.increment
            assert self.current_global_batch_size <= self.global_batch
        if consistency_check and not self.decrease:
            assert self.current_global_batch_size % self.step == 0
        if self.decrease and self.current_global_batch_size % self.step != 0:
            self.current_running_global_batch_size = round_down(self.current_global_batch_size, self.step)
        else:
            self.current_running_global_batch_size = self.current_global_batch_size
        self.num_micro_batches = self.current_running_global_batch_size // self.step


def megatron(global_batch, micro, dp, decrease, start, increment, samples, train_samples):
    try:
        if start < 0:
            calc = Constant(global_batch, micro, dp, decrease)
            train_iters = train_samples // global_batch
        else:
            calc = Rampup(global_batch, micro, dp, decrease, start, increment, samples)
            iterations, consumed = 0, 0
            while consumed <= samples and consumed <= train_samples:
                calc.update(consumed, consistency_check=False)
                consumed += calc.current_global_batch_size
                iterations += 1
            calc.update(0, consistency_check=False)
            if train_samples > consumed:
                iterations += (train_samples - consumed) // global_batch
            train_iters = iterations
        out, consumed = [], 0
        for _ in range(train_iters):
            calc.update(consumed, consistency_check=True)
            if calc.num_micro_batches < 1:
                raise Refused("0 micro-batches")
            out.append((calc.current_global_batch_size, calc.current_running_global_batch_size, calc.num_micro_batches))
            consumed += micro * dp * calc.num_micro_batches
        return "iters %d" % train_iters + "".join(" | %d %d %d" % t for t in out)
    except (AssertionError, ZeroDivisionError, Refused):
        return "error"


def cases():
    named = [
        # Megatron's own example, scaled: 16 -> 64 by 8 over 300 samples.
        (64, 2, 2, 0, 16, 8, 300, 2000),
        (64, 1, 1, 0, 16, 8, 300, 2000),
        (1024, 4, 2, 0, 16, 8, 30000, 60000),
        # --train-samples ending inside the ramp, at its end, just after it.
        (48, 2, 1, 0, 8, 8, 400, 150), (48, 2, 1, 0, 8, 8, 400, 400), (48, 2, 1, 0, 8, 8, 400, 401),
        # A per-increment count that is not a whole number of samples (100 / 3).
        (40, 1, 2, 0, 10, 10, 100, 500),
        # Decrease: steps of 6 with micro x dp = 4 round down; a constant 30 on 4 rounds to 28.
        (30, 2, 2, 1, 6, 6, 120, 600), (30, 2, 2, 1, -1, 0, 0, 300), (32, 2, 2, 1, -1, 0, 0, 300),
        # Errors Megatron raises: a start above the global batch, an interval the increment does not divide,
        # nothing to ramp (division by zero), no ramp-up samples (division by zero), non-positive values,
        # a reached batch that micro x dp does not divide, a constant batch that it does not divide.
        (32, 1, 1, 0, 48, 8, 100, 500), (32, 1, 1, 0, 8, 5, 100, 500), (32, 1, 1, 0, 32, 8, 100, 500),
        (32, 1, 1, 0, 8, 8, 0, 500), (32, 1, 1, 0, 0, 8, 100, 500), (32, 1, 1, 0, 8, 0, 100, 500),
        (32, 1, 1, 0, 8, 8, -1, 500), (32, 2, 2, 0, 6, 2, 100, 500), (30, 2, 2, 0, -1, 0, 0, 300),
        # Loom refuses a batch rounded down to nothing.
        (32, 4, 2, 1, 4, 4, 100, 500),
        # A ramp that would fail after --train-samples ends is not reached: fine.
        (40, 4, 1, 0, 4, 4, 1000, 12),
    ]
    rnd = random.Random(1234)
    generated = []
    for _ in range(500):
        micro, dp = rnd.choice([1, 2, 4]), rnd.choice([1, 2, 3, 4])
        step = micro * dp
        increment = rnd.choice([step, 2 * step, 1, 3, 5])
        start = rnd.choice([step, 2 * step, increment, 1, 7, 3 * step])
        n = rnd.randint(0, 12)
        global_batch = start + n * increment + rnd.choice([0, 0, 0, 0, 1])
        samples = rnd.choice([0, 1, 37, 100, 1000, 2500, rnd.randint(1, 5000)])
        train_samples = rnd.choice([samples // 2, samples, samples + 1, 3 * samples + 17, rnd.randint(0, 8000)])
        generated.append((global_batch, micro, dp, rnd.choice([0, 1]), start, increment, samples, train_samples))
    return named + generated


def main():
    all_cases = cases()
    text = "".join(" ".join(str(v) for v in c) + "\n" for c in all_cases)
    r = subprocess.run([DRIVER], input=text, capture_output=True, text=True)
    check(r.returncode == 0, "the driver runs")
    got = r.stdout.splitlines()
    check(len(got) == len(all_cases), f"one answer per case ({len(all_cases)})")
    ok = errors = ramped = rounded = 0
    for case, loom in zip(all_cases, got):
        ref = megatron(*case)
        loom_short = "error" if loom.startswith("error ") else loom
        if loom_short != ref:
            check(False, f"case {case}:\n  loom {loom[:300]}\n  ref  {ref[:300]}")
            continue
        if ref == "error":
            errors += 1
            if "\n" in loom or len(loom) < 20:
                check(False, f"case {case}: one line naming the problem: {loom}")
        else:
            ok += 1
            steps = [tuple(map(int, t.split())) for t in ref.split(" | ")[1:]]
            ramped += len({g for g, _, _ in steps}) > 1
            rounded += any(g != run for g, run, _ in steps)
    check(ok > 150 and errors > 50, f"{ok} runnable and {errors} refused cases agree (need > 150 and > 50)")
    check(ramped > 100 and rounded > 20, f"{ramped} cases ramp, {rounded} round down (need > 100 and > 20)")
    print(f"{len(all_cases)} cases: {ok} runnable, {errors} refused, {ramped} ramping, {rounded} rounding down")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
