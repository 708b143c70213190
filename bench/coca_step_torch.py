#!/usr/bin/python3
"""The PyTorch side of bench/coca_step.sh: one whole CoCa training step (forward of both losses,
backward, gradient norm and clipping, DeepSpeed FusedLamb over EVA-CLIP's layer-decay groups, the
logit_scale clamp) of the plain-PyTorch CoCa of tests/parity/coca_reference.py in fp32 at its BENCH shape,
timed per step: the median wall and process CPU time of the timed steps, and the median forward /
backward / optimizer split. Prints one JSON line.

  coca_step_torch.py [--batch 16] [--steps 2] [--warmup 1] [--threads 2]
  coca_step_torch.py --print-config   # the shape and optimizer settings as JSON (what bench/coca_step_bench reads)
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
import coca_reference as ref  # noqa: E402

# Log 000's optimizer settings (lr 5e-4, visual 2e-4, text and decoder 2e-5, wd 0.05, layer decay 0.75
# per tower, FusedLamb betas (0.9, 0.999), eps 1e-8, clipping at 5) over 100 scheduled steps.
OPTIM = {"lr": 5e-4, "wd": 0.05, "ld": 1.0, "tower_lr": {"visual": 2e-4, "text": 2e-5, "text_decoder": 2e-5},
         "tower_ld": {"visual": 0.75, "text": 0.75, "text_decoder": 0.75}, "warmup": 10, "total_steps": 100,
         "clip_norm": 5.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "max_coeff": 10.0, "min_coeff": 0.01}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--print-config", action="store_true")
    a = ap.parse_args()
    c = ref.BENCH
    if a.print_config:
        print(json.dumps(dict(c, **OPTIM, gflop_per_image=3 * ref.gemm_flops_per_image(c) / 1e9)))
        return
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ref.CoCa(c, rope_dtype=torch.float32)
    ref.randomize_(model, 0)
    towers = ref.group_towers(c, OPTIM["lr"], OPTIM["wd"], OPTIM["ld"], OPTIM["tower_lr"], None, OPTIM["tower_ld"])
    trainer = ref.Trainer(model, towers, OPTIM["warmup"], OPTIM["total_steps"], OPTIM["clip_norm"], eps=OPTIM["eps"],
                          betas=(OPTIM["beta1"], OPTIM["beta2"]))
    g = torch.Generator().manual_seed(1)
    images = torch.randn(a.batch, 3, c["image_size"], c["image_size"], generator=g)
    text = ref.random_text(c, a.batch, g)
    wall, cpu, split = [], [], []
    for s in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.step(s, images, text)
        if s >= a.warmup:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            split.append(trainer.seconds)
    med = statistics.median(wall)
    print(json.dumps({"threads": a.threads, "batch": a.batch, "sec_per_step": med, "cpu_sec_per_step": statistics.median(cpu),
                      "images_per_s": a.batch / med,
                      **{k + "_s": statistics.median(x[k] for x in split) for k in ("forward", "backward", "optimizer")}}))


if __name__ == "__main__":
    main()
