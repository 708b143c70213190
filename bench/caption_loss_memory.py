#!/usr/bin/python3
"""The caption cross-entropy's memory in PyTorch, the largest term of plan/coca_memory_model.h's peak.

open_clip's CoCaLoss calls F.cross_entropy(logits.permute(0, 2, 1), labels) on half logits [B, T, V] under
autocast, which runs the loss in fp32. The model counts three fp32 logit-sized tensors beyond the logits
at the loss's peak (the saved log_softmax output, nll_loss's gradient, the gradient log_softmax's backward
makes). This measures the process's peak resident memory (glibc serves such blocks from mmap and returns
them, so ru_maxrss follows the live bytes) over the logits, forward and backward, on the CPU in bf16
autocast and in fp32, in units of one fp32 logit-sized tensor. Usage: bench/caption_loss_memory.py
"""
import resource
import subprocess
import sys

import torch
import torch.nn.functional as F


def measure(mode):
    torch.set_num_threads(1)
    B, T, V = 8, 1024, 4096  # one fp32 tensor: 128 MiB
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    logits = torch.randn(B, T, V, dtype=torch.float32 if mode == "fp32" else torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, V, (B, T))
    base = rss()
    if mode == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(logits.permute(0, 2, 1), labels)
    else:
        loss = F.cross_entropy(logits.permute(0, 2, 1), labels)
    forward = rss()
    loss.backward()
    unit = B * T * V * 4
    print(f"{mode:8s} forward {(forward - base) / unit:.2f}  peak through the backward {(rss() - base) / unit:.2f}"
          f"  (fp32 logit-sized tensors beyond the logits; the model counts 3)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        measure(sys.argv[1])
    else:  # each in a fresh process: ru_maxrss only grows
        for mode in ("autocast", "fp32"):
            subprocess.run([sys.executable, __file__, mode], check=True)
