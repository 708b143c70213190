#!/usr/bin/python3
"""torch.optim.SGD (momentum 0.9, weight decay 0.1, five steps at changing lr, fp32, 100,003 elements) equals,
bit for bit, the element arithmetic tests/unit/test_sgd.cpp holds Loom's SGD kernel to (torch_sgd there):
d = fma(p, wd, g); buf = d on the first step, else round(momentum * buf) + d; p = fma(buf, -lr, p).
The fused multiply-adds are computed exactly in float64 (a float32 product is exact there) and rounded once
to float32. Exit codes: 0 pass, 1 mismatch."""
import sys

import numpy as np
import torch


def main():
    torch.manual_seed(0)
    n = 100003
    p0 = torch.randn(n) * 0.5
    param = torch.nn.Parameter(p0.clone())
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9, weight_decay=0.1)
    f32 = np.float32
    p, buf = p0.numpy().astype(np.float32).copy(), np.zeros(n, np.float32)
    for step in range(5):
        g = torch.randn(n)
        lr = 0.05 * (step + 1)
        opt.param_groups[0]["lr"] = lr
        param.grad = g.clone()
        opt.step()
        d = (p.astype(np.float64) * np.float64(f32(0.1)) + g.numpy().astype(np.float64)).astype(np.float32)
        buf = d if step == 0 else (f32(0.9) * buf).astype(np.float32) + d
        p = (buf.astype(np.float64) * -np.float64(f32(lr)) + p.astype(np.float64)).astype(np.float32)
    t = param.detach().numpy()
    bad = int((t != p).sum())
    moved = float(np.abs(t - p0.numpy()).max())
    print(f"torch.optim.SGD vs the kernel's arithmetic: {bad} of {n} elements differ (weights moved up to {moved:.3f})")
    return 0 if bad == 0 and moved > 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
