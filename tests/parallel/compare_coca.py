#!/usr/bin/python3
"""Compares coca_dp_driver outputs: every file against the first (one process). Every step's losses and
gradient norm within RTOL relative; the final weights within 5 x RTOL relative to each tensor's norm: Adam
turns the rounding differences of near-zero gradients (reduction orders differ between layouts) into
steps of up to lr, and the small bias and norm tensors that start at zero feel that most.

usage: compare_coca.py RTOL LR_STEPS REFERENCE OTHER...

The key biases of nn.MultiheadAttention's packed in_proj_bias (its middle third) are compared apart: a
constant added to every key of a query's scores does not change their softmax, so their true gradient is
zero and what reaches them is rounding noise, which Adam normalises into steps of about lr whatever its
size. They must stay within LR_STEPS (lr x steps, both ways) of the reference instead."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
import numpy as np
from safetensors_np import load_file  # noqa: E402


def main():
    rtol, lr_steps = float(sys.argv[1]), float(sys.argv[2])
    ref = load_file(sys.argv[3])
    ok = True
    for path in sys.argv[4:]:
        got = load_file(path)
        worst = ("", 0.0, 0.0)
        for k, v in ref.items():
            a, b = np.asarray(got[k], np.float64).ravel(), np.asarray(v, np.float64).ravel()
            if k.endswith("in_proj_bias"):
                third = b.size // 3
                if np.max(np.abs(a[third:2 * third] - b[third:2 * third])) > lr_steps:
                    ok = False
                    print(f"{os.path.basename(path)}: key biases of {k} moved apart by more than {lr_steps}")
                a = np.concatenate([a[:third], a[2 * third:]])
                b = np.concatenate([b[:third], b[2 * third:]])
            if k in ("loss", "grad_norm"):
                err = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
            else:
                err = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))
            limit = rtol if k in ("loss", "grad_norm") else 5 * rtol
            if err / limit > worst[1]:
                worst = (k, err / limit, err)
        status = "ok" if worst[1] <= 1 else "FAIL"
        ok &= status == "ok"
        print(f"{status}: {os.path.basename(path)} worst {worst[0]} rel {worst[2]:.3e} ({worst[1]:.2f} of its limit)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
