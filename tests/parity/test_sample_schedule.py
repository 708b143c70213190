#!/usr/bin/python3
"""Megatron's sample-based training (--train-samples, --lr-decay-samples, --lr-warmup-samples) against a
Python reimplementation of Megatron-LM's formulas, written here from training.py and
optimizer_param_scheduler.py:

  update_train_iters:  train_iters = train_samples // global_batch_size (partial last batch dropped)
  get_optimizer_param_scheduler (sample-based): decay_steps = lr_decay_samples or train_samples,
      warmup_steps = lr_warmup_fraction * decay_steps if the fraction is given, else lr_warmup_samples
  get_lr(num_steps): linear warmup from init to max, then cosine/linear decay to min over
      (warmup, decay], min after; num_steps = consumed samples (the schedule advances by the global batch)
  the training dataset's target size is train_samples itself.

Every logged learning rate of `loom train` must equal the formula's value printed as %.6E, the run must
stop after train_iters iterations, and the dataset target must be train_samples.
Needs $LOOM_BUILD_DIR. Exits non-zero on failure.
"""

import math
import os
import re
import subprocess
import sys
import tempfile

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("LOOM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
LOOM = os.path.join(BUILD, "loom")
VOCAB = os.path.join(SOURCE, "data/gpt2/vocab.json")
MERGES = os.path.join(SOURCE, "data/gpt2/merges.txt")
CORPUS = os.path.join(SOURCE, "data/corpus/kjv.jsonl")
FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def megatron_lr(num_steps, max_lr, min_lr, init_lr, warmup_steps, decay_steps, style):
    if warmup_steps > 0 and num_steps <= warmup_steps:
        return init_lr + (max_lr - init_lr) * float(num_steps) / float(warmup_steps)
    if style == "constant":
        return max_lr
    if num_steps > decay_steps:
        return min_lr
    ratio = float(num_steps - warmup_steps) / float(decay_steps - warmup_steps)
    coeff = 1.0 - ratio if style == "linear" else 0.5 * (math.cos(math.pi * ratio) + 1.0)
    return min_lr + coeff * (max_lr - min_lr)


def run(tmp, extra):
    args = [LOOM, "train", "--num-layers", "1", "--hidden-size", "32", "--num-attention-heads", "2",
            "--seq-length", "16", "--micro-batch-size", "4", "--global-batch-size", "12", "--lr", "1e-3",
            "--min-lr", "1e-4", "--log-interval", "1", "--eval-iters", "0", "--data-path",
            os.path.join(tmp, "c_text_document"), "--vocab-file", VOCAB, "--merge-file", MERGES] + extra
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
    return r


def case(tmp, name, extra, train_samples, decay, warmup, style):
    r = run(tmp, extra)
    check(r.returncode == 0, name + ": runs")
    lrs = [float(x) for x in re.findall(r"learning rate: ([0-9.E+-]+) \|", r.stdout)]
    iters = train_samples // 12
    check(len(lrs) == iters, f"{name}: {iters} iterations (= {train_samples} // 12), got {len(lrs)}")
    expected = ["%.6E" % megatron_lr(12 * (k + 1), 1e-3, 1e-4, 0.0, warmup, decay, style) for k in range(iters)]
    got = ["%.6E" % x for x in lrs]
    check(got == expected, f"{name}: every learning rate equals Megatron's formula\n  loom {got}\n  ref  {expected}")
    check(re.search(rf"^\s+train:\s+{train_samples}$", r.stdout, re.M) is not None,
          f"{name}: the training dataset's target is --train-samples ({train_samples})")
    check(f"setting training iterations to {iters}" in r.stdout, f"{name}: Megatron's 'setting training iterations' line")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        with open(CORPUS) as f, open(os.path.join(tmp, "c.jsonl"), "w") as g:
            for _ in range(30):
                g.write(f.readline())
        subprocess.run([LOOM, "preprocess", "--input", os.path.join(tmp, "c.jsonl"), "--output-prefix",
                        os.path.join(tmp, "c"), "--vocab-file", VOCAB, "--merge-file", MERGES, "--append-eod",
                        "--workers", "1"], check=True, capture_output=True)
        # 100 samples: 8 iterations of 12 (4 samples dropped); warmup 30 samples, cosine decay over 70.
        case(tmp, "samples, warmup samples, cosine", ["--train-samples", "100", "--lr-decay-samples", "70",
             "--lr-warmup-samples", "30", "--lr-decay-style", "cosine"], 100, 70, 30, "cosine")
        # Decay over --train-samples by default, warmup a fraction of it (0.25 x 61 = 15.25 samples).
        case(tmp, "decay over train samples, warmup fraction, linear", ["--train-samples", "61",
             "--lr-warmup-fraction", "0.25", "--lr-decay-style", "linear"], 61, 61, 0.25 * 61, "linear")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
