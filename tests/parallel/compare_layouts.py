#!/usr/bin/python3
"""Compares gpt_layout_driver outputs: every file against the first (one process). Losses and grad
norms within rtol relative, final weights within rtol relative to each tensor's norm.

usage: compare_layouts.py RTOL HEAD_DIM REFERENCE OTHER...

One part of the model is compared apart: the key biases (the middle D of every head's 3D rows of
linear_qkv.bias). Adding a constant to a row's keys does not change its softmax, so their true gradient
is exactly zero and what reaches them is rounding noise, which Adam normalises into steps of about lr
whatever its size: they wander by up to lr per step in any implementation and any layout. They are
checked to stay within that bound instead."""
import sys, os
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
import numpy as np
from safetensors_np import load_file  # noqa: E402

def main():
    rtol, head_dim = float(sys.argv[1]), int(sys.argv[2])
    ref_path, others = sys.argv[3], sys.argv[4:]
    ref = load_file(ref_path)
    ok = True
    for path in others:
        got = load_file(path)
        worst = ("", 0.0)
        for k, v in ref.items():
            a, b = np.asarray(got[k], np.float64), np.asarray(v, np.float64)
            if k.endswith("linear_qkv.bias"):
                idx = np.arange(b.size) % (3 * head_dim)
                key = (idx >= head_dim) & (idx < 2 * head_dim)
                if np.max(np.abs(a[key] - b[key])) > 0.1:  # 20 steps of lr <= 3e-3, both ways
                    ok = False
                    print(f"{os.path.basename(path)}: key biases of {k} moved apart by more than 20 lr")
                a, b = a[~key], b[~key]
            if k in ("loss", "grad_norm"):
                err = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
            else:
                err = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))
            if err > worst[1]:
                worst = (k, err)
        status = "ok" if worst[1] <= rtol else "FAIL"
        ok &= worst[1] <= rtol
        print(f"{os.path.basename(path)}: worst {worst[0]} rel err {worst[1]:.3e} (tol {rtol:g}) {status}")
    sys.exit(0 if ok else 1)

main()
