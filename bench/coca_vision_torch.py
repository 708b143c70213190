#!/usr/bin/python3
"""The same CoCa vision tower in plain PyTorch (the parity test's reference model,
tests/parity/test_coca_vision.py: EVA-02 ViT-B/16 + open_clip's attentional poolers), fp32, forward +
backward on random images, timed per step (median wall and process CPU time). Prints one JSON line.

  coca_vision_torch.py [--batch 8] [--steps 3] [--warmup 1] [--threads 2] [--image-size 224]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from test_coca_vision import Visual  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=224)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = {"image_size": a.image_size, "patch_size": 16, "width": 768, "layers": 12, "heads": 12, "mlp_hidden": 2048,
           "rope_pt_grid": 16, "pooler_queries": 256, "pooler_heads": 8, "embed_dim": 512}
    model = Visual(cfg, rope_dtype=torch.float32)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    images = torch.randn(a.batch, 3, a.image_size, a.image_size)
    dl = torch.randn(a.batch, 512)
    dt = torch.randn(a.batch, 256, 512)
    times, cpu = [], []
    for s in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=False)
        latent, tokens = model(images)
        ((latent * dl).sum() + (tokens * dt).sum()).backward()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    med = times[len(times) // 2]
    print(json.dumps({"threads": a.threads, "batch": a.batch, "sec_per_step": med,
                      "cpu_sec_per_step": cpu[len(cpu) // 2], "images_per_s": a.batch / med}))


if __name__ == "__main__":
    main()
