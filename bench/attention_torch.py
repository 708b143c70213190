#!/usr/bin/env python3
"""PyTorch reference timings for the CPU kernels, on 2 threads.

Causal self-attention, naive (matmul - masked softmax - matmul, with autograd backward), for
B=4, T=256, H=12, D=64, with and without attention dropout; and the output layer + cross-entropy
(x @ W^T, F.cross_entropy, backward for x and W) for N=1024, V=50304, C=768.

    /usr/bin/python3 bench/attention_torch.py [path/to/bench_kernels]

With the path of Loom's bench_kernels binary, it also runs that and prints the speed-up ratios.
"""
import math
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


def best_time(fn, reps):
    """Minimum over reps runs after a warm-up (as bench_kernels does: robust on a shared machine)."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def bench_attention(p):
    B, T, H, D = 4, 256, 12, 64
    qkv = torch.randn(B, T, 3 * H * D)
    dout = torch.randn(B, T, H * D)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)

    def step():
        x = qkv.detach().requires_grad_(True)
        q, k, v = x.view(B, T, H, 3, D).permute(3, 0, 2, 1, 4).unbind(0)  # Megatron's fused layout
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D))
        s = s.masked_fill(mask, float("-inf"))
        a = torch.softmax(s, dim=-1)
        if p > 0:
            a = F.dropout(a, p=p, training=True)
        o = (a @ v).transpose(1, 2).reshape(B, T, H * D)
        o.backward(dout)
        return x.grad

    return best_time(step, 20)


def bench_ce():
    N, V, C = 1024, 50304, 768
    x0 = torch.randn(N, C)
    W0 = torch.randn(V, C) * 0.05
    labels = torch.randint(0, V, (N,))

    def step():
        x = x0.detach().requires_grad_(True)
        W = W0.detach().requires_grad_(True)
        loss = F.cross_entropy(x @ W.t(), labels)
        loss.backward()
        return x.grad, W.grad

    return best_time(step, 5), 3 * 2.0 * N * V * C


def main():
    res = {}
    for p in (0.0, 0.1):
        t = bench_attention(p)
        res[f"attention_fwd_bwd_ms_p{p:.1f}"] = t * 1e3
        print(f"torch attention B=4 T=256 H=12 D=64 p={p:.1f}: fwd+bwd {t * 1e3:.2f} ms")
    t, flops = bench_ce()
    res["ce_ms"] = t * 1e3
    print(f"torch linear + cross_entropy N=1024 V=50304 C=768: fwd+bwd {t * 1e3:.1f} ms, {flops / t * 1e-9:.1f} GFLOP/s")
    if len(sys.argv) > 1:
        env = dict(os.environ, OMP_NUM_THREADS="2")
        out = subprocess.run([sys.argv[1], "all"], capture_output=True, text=True, env=env, check=True).stdout
        print(out, end="")
        loom = {m.group(1): float(m.group(2)) for m in re.finditer(r"^RESULT (\S+) (\S+)$", out, re.M)}
        for p in ("0.0", "0.1"):
            key = f"attention_fwd_bwd_ms_p{p}"
            if key in loom:
                print(f"attention p={p}: torch / loom = {res[key] / loom[key]:.2f}x")
        ce = [v for k, v in loom.items() if k.startswith("ce_ms_chunk")]
        if ce:
            print(f"cross-entropy: torch / loom (best chunk) = {res['ce_ms'] / min(ce):.2f}x")


if __name__ == "__main__":
    main()
