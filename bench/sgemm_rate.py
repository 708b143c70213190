#!/usr/bin/python3
"""This machine's SGEMM rate (GFLOP/s, 2*M*N*K per call) with a fixed thread count, via
torch.mm (torch's BLAS: OpenBLAS on Debian, plus its oneDNN path for matmul) and numpy's
BLAS. Prints one JSON line. If OPENBLAS_CORETYPE is set in the environment (it forces
OpenBLAS's kernel choice, e.g. "Haswell" = AVX2 only), both backends are measured again with
it removed (*_native_coretype), i.e. with OpenBLAS's own CPU detection. Thread counts are set through the environment before the
libraries load; each backend runs in its own subprocess so their pools do not compete.

  /usr/bin/python3 bench/sgemm_rate.py [--threads 2] [--seconds 1.5]
"""

import argparse
import json
import os
import subprocess
import sys
import time

SHAPES = [(1024, 1024, 1024), (4096, 768, 768), (4096, 768, 3072), (4096, 3072, 768), (2048, 50304, 256)]


def measure(fn, flops, seconds):
    fn()  # warm-up (also first-touch of the output)
    n, t0 = 0, time.perf_counter()
    best = float("inf")
    while True:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        n += 1
        if time.perf_counter() - t0 >= seconds and n >= 3:
            break
    mean = (time.perf_counter() - t0) / n
    return {"gflops": round(flops / mean / 1e9, 1), "gflops_best": round(flops / best / 1e9, 1), "calls": n}


def child(backend, threads, seconds):
    res = {}
    if backend == "torch":
        import torch
        torch.set_num_threads(threads)
        for (m, n, k) in SHAPES:
            a, b = torch.randn(m, k), torch.randn(k, n)
            c = torch.empty(m, n)
            res[f"{m}x{n}x{k}"] = measure(lambda: torch.mm(a, b, out=c), 2.0 * m * n * k, seconds)
        res["_info"] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    else:
        import numpy as np
        rng = np.random.default_rng(0)
        for (m, n, k) in SHAPES:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            c = np.empty((m, n), dtype=np.float32)
            res[f"{m}x{n}x{k}"] = measure(lambda: np.matmul(a, b, out=c), 2.0 * m * n * k, seconds)
        res["_info"] = {"numpy": np.__version__}
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=1.5, help="time per shape")
    ap.add_argument("--child", choices=["torch", "numpy"])
    args = ap.parse_args()
    if args.child:
        child(args.child, args.threads, args.seconds)
        return
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    out = {"threads": args.threads, "unit": "GFLOP/s (2*M*N*K / mean time per call; *_best = fastest call)",
           "shapes": "MxNxK: C[M,N] = A[M,K] @ B[K,N]",
           "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
           "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    runs = [("torch", "torch", env), ("numpy", "numpy", env)]
    if "OPENBLAS_CORETYPE" in env:  # also measure OpenBLAS with its own CPU detection
        native = {k: v for k, v in env.items() if k != "OPENBLAS_CORETYPE"}
        runs += [("torch_native_coretype", "torch", native), ("numpy_native_coretype", "numpy", native)]
    for key, backend, e in runs:
        p = subprocess.run([sys.executable, __file__, "--child", backend, "--threads", str(args.threads),
                            "--seconds", str(args.seconds)], env=e, stdout=subprocess.PIPE, text=True, check=True)
        out[key] = json.loads(p.stdout.strip().splitlines()[-1])
    out["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
