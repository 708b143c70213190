#!/usr/bin/python3
"""End-to-end parity: Loom's GPT training (tests/gpt_parity_driver) vs the torch reference.

Protocol (all files in a fresh temp dir):
  config.json        num_layers, hidden_size, num_attention_heads, ffn_hidden_size, seq_length,
                     max_position_embeddings, padded_vocab_size, micro_batch_size,
                     global_batch_size, steps, lr, min_lr, lr_decay_style, lr_warmup_iters,
                     lr_decay_iters, weight_decay, adam_beta1, adam_beta2, adam_eps, clip_grad,
                     layernorm_epsilon
  init.safetensors   all weights, F32, Megatron-core names
  tokens.bin         int32 LE [steps, global_batch, seq+1] (inputs sample[:-1], labels sample[1:])
  loss_mask.bin      float32 LE [steps, global_batch, seq]
  driver call:       $LOOM_BUILD_DIR/tests/gpt_parity_driver --config config.json
                       --weights init.safetensors --tokens tokens.bin --loss-mask loss_mask.bin
                       --out out.safetensors
  out.safetensors    loss F32 [steps], grad_norm F32 [steps] (pre-clip), lr F32 [steps],
                     grad.<name> F32 (iteration 0, accumulated over micro-batches, pre-clip),
                     final.<name> F32 (weights after all steps)

The reference runs in float64 by default (LOOM_PARITY_REF_DTYPE=float32 to change), so the
measured error is the driver's own fp32 error.
Options: --keep (keep the temp dir), --verbose (every tensor), --driver PATH
(or env LOOM_PARITY_DRIVER). Exit codes: 0 pass, 1 mismatch, 77 driver not built.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import megatron_gpt as mg  # noqa: E402
import safetensors_np as st  # noqa: E402

CONFIG = {
    "num_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "ffn_hidden_size": 256,
    "seq_length": 32,
    "max_position_embeddings": 32,
    "padded_vocab_size": 512,
    "micro_batch_size": 2,
    "global_batch_size": 4,
    "steps": 20,
    "lr": 1e-3,
    "min_lr": 1e-4,
    "lr_decay_style": "cosine",
    "lr_warmup_iters": 3,
    "lr_decay_iters": 20,
    "weight_decay": 0.1,
    "adam_beta1": 0.9,
    "adam_beta2": 0.95,
    "adam_eps": 1e-8,
    "clip_grad": 1.0,
    "layernorm_epsilon": 1e-5,
}
INIT_METHOD_STD = 0.02
SEED = 20240607

TOL_LOSS0 = 1e-5
TOL_GRAD = 1e-5
TOL_GRAD_NORM0 = 1e-5
TOL_CURVE = 1e-4
TOL_LR = 1e-7
TOL_FINAL = 1e-4
TINY = 1e-30


def make_data(cfg, seed):
    """Tokens with some learnable structure (so the loss moves) that also hit padded rows."""
    rng = np.random.default_rng(seed)
    S, B, T, V = cfg["steps"], cfg["global_batch_size"], cfg["seq_length"], cfg["padded_vocab_size"]
    tok = np.empty((S, B, T + 1), dtype=np.int64)
    tok[:, :, 0] = rng.integers(0, V, size=(S, B))
    for t in range(1, T + 1):
        follow = rng.random((S, B)) < 0.7
        nxt = (tok[:, :, t - 1] * 7 + 3) % (V - 12)  # never lands in the last 12 rows...
        tok[:, :, t] = np.where(follow, nxt, rng.integers(0, V, size=(S, B)))  # ...except at random
    mask = (rng.random((S, B, T)) > 0.15).astype(np.float32)
    mask[:, 1, : T // 4] = 0.0  # a masked prefix in one sample of the first micro-batch
    mb = cfg["micro_batch_size"]
    for k in range(S):
        for j in range(0, B, mb):
            assert mask[k, j:j + mb].sum() > 0
    return tok.astype(np.int32), mask


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm((a - b).ravel()) / max(float(np.linalg.norm(b.ravel())), TINY))


def scalar_rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), TINY)


class Report:
    def __init__(self):
        self.rows = []  # (check, worst item, error, tol, ok)
        self.problems = []

    def add(self, check, errors, tol):
        """errors: list of (item, error). Records the worst."""
        if not errors:
            self.rows.append((check, "-", float("nan"), tol, False))
            self.problems.append(f"{check}: nothing to compare")
            return
        item, err = max(errors, key=lambda e: (not math.isfinite(e[1]), e[1]))
        ok = math.isfinite(err) and err <= tol
        nfail = sum(1 for _, e in errors if not (math.isfinite(e) and e <= tol))
        self.rows.append((check, item, err, tol, ok, nfail, len(errors)))

    def print(self):
        w = max([len(r[1]) for r in self.rows] + [10])
        print(f"\n{'check':<22} {'worst item':<{w}} {'error':>11} {'tol':>8}  {'fails':>7}  status")
        print("-" * (22 + w + 45))
        for r in self.rows:
            check, item, err, tol, ok = r[:5]
            fails = f"{r[5]}/{r[6]}" if len(r) > 5 else "-"
            print(f"{check:<22} {item:<{w}} {err:>11.3e} {tol:>8.0e}  {fails:>7}  {'ok' if ok else 'FAIL'}")
        for p in self.problems:
            print("PROBLEM:", p)

    def passed(self):
        return not self.problems and all(r[4] for r in self.rows)


def compare(out, ref, cfg, shapes, verbose=False):
    rep = Report()
    steps = cfg["steps"]
    for key in ("loss", "grad_norm", "lr"):
        if key not in out:
            rep.problems.append(f"missing output '{key}'")
        elif out[key].shape != (steps,):
            rep.problems.append(f"'{key}' has shape {out[key].shape}, expected ({steps},)")
    for name, shape in shapes.items():
        for pre in ("grad.", "final."):
            if pre + name not in out:
                rep.problems.append(f"missing output '{pre + name}'")
            elif out[pre + name].shape != tuple(shape):
                rep.problems.append(f"'{pre + name}' has shape {out[pre + name].shape}, expected {tuple(shape)}")
    for key, arr in out.items():
        if arr.dtype != np.float32:
            rep.problems.append(f"'{key}' has dtype {arr.dtype}, expected F32")
        if not np.all(np.isfinite(arr)):
            rep.problems.append(f"'{key}' contains NaN/Inf")
    known = {"loss", "grad_norm", "lr"} | {p + n for n in shapes for p in ("grad.", "final.")}
    unknown = sorted(set(out) - known)
    if unknown:
        print(f"note: ignoring unexpected outputs {unknown[:5]}{'...' if len(unknown) > 5 else ''}")

    def ok_shape(key, shape):
        return key in out and out[key].shape == tuple(shape)

    if ok_shape("loss", (steps,)):
        rep.add("loss[0]", [("iter 0", scalar_rel(out["loss"][0], ref["loss"][0]))], TOL_LOSS0)
        rep.add("loss curve", [(f"iter {k}", scalar_rel(out["loss"][k], ref["loss"][k])) for k in range(steps)],
                TOL_CURVE)
    if ok_shape("grad_norm", (steps,)):
        rep.add("grad_norm[0]", [("iter 0", scalar_rel(out["grad_norm"][0], ref["grad_norm"][0]))], TOL_GRAD_NORM0)
        rep.add("grad_norm curve", [(f"iter {k}", scalar_rel(out["grad_norm"][k], ref["grad_norm"][k]))
                                    for k in range(steps)], TOL_CURVE)
    if ok_shape("lr", (steps,)):
        errs = []
        for k in range(steps):
            a, b = float(out["lr"][k]), float(ref["lr"][k])
            errs.append((f"iter {k}", 0.0 if a == b else abs(a - b) / max(abs(b), TINY)))
        rep.add("lr", errs, TOL_LR)
    grad_errs = [(n, rel(out["grad." + n], ref["grads0"][n])) for n in shapes if ok_shape("grad." + n, shapes[n])]
    rep.add("grad (iter 0)", grad_errs, TOL_GRAD)
    final_errs = [(n, rel(out["final." + n], ref["final"][n])) for n in shapes if ok_shape("final." + n, shapes[n])]
    rep.add("final weights", final_errs, TOL_FINAL)

    if verbose:
        print(f"\n{'tensor':<52} {'grad rel':>10} {'final rel':>10}")
        ge, fe = dict(grad_errs), dict(final_errs)
        for n in shapes:
            print(f"{n:<52} {ge.get(n, float('nan')):>10.2e} {fe.get(n, float('nan')):>10.2e}")
        if "loss" in out:
            print(f"\n{'iter':>4} {'lr':>12} {'ref lr':>12} {'loss':>12} {'ref loss':>12} {'gnorm':>12} {'ref gnorm':>12}")
            for k in range(steps):
                print(f"{k:>4} {out['lr'][k]:>12.5e} {ref['lr'][k]:>12.5e} {out['loss'][k]:>12.7f} "
                      f"{ref['loss'][k]:>12.7f} {out['grad_norm'][k]:>12.6e} {ref['grad_norm'][k]:>12.6e}")
    return rep


def write_inputs(d, cfg, weights, tokens, mask):
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    st.save_file({n: np.ascontiguousarray(w, dtype=np.float32) for n, w in weights.items()},
                 os.path.join(d, "init.safetensors"))
    np.ascontiguousarray(tokens, dtype="<i4").tofile(os.path.join(d, "tokens.bin"))
    np.ascontiguousarray(mask, dtype="<f4").tofile(os.path.join(d, "loss_mask.bin"))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--driver", default=os.environ.get("LOOM_PARITY_DRIVER"))
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--activation", default="gelu", choices=["gelu", "gelu_exact"],
                    help="gelu: tanh GELU (Megatron's fused bias-GELU); gelu_exact: F.gelu (--no-bias-gelu-fusion)")
    ap.add_argument("--post-ln-residual", action="store_true",
                    help="--apply-residual-connection-post-layernorm: residuals from the norms' outputs")
    ap.add_argument("--optimizer", default="adam", choices=["adam", "sgd"],
                    help="sgd: torch.optim.SGD (momentum, weight decay) against the driver's --optimizer sgd")
    ap.add_argument("--lr", type=float, default=None, help="the schedule's max lr (default the config's)")
    args = ap.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    driver = args.driver
    if not driver:
        build = os.environ.get("LOOM_BUILD_DIR")
        if not build:
            print("LOOM_BUILD_DIR is not set (and no --driver / LOOM_PARITY_DRIVER)")
            return 77
        driver = os.path.join(build, "tests", "gpt_parity_driver")
    if not (os.path.isfile(driver) and os.access(driver, os.X_OK)):
        print(f"driver not found or not executable: {driver}")
        return 77

    ref_dtype = {"float64": torch.float64, "float32": torch.float32}[
        os.environ.get("LOOM_PARITY_REF_DTYPE", "float64")]
    cfg = dict(CONFIG)
    if args.activation != "gelu":
        cfg["activation"] = args.activation
    if args.post_ln_residual:
        cfg["apply_residual_connection_post_layernorm"] = True
    if args.optimizer == "sgd":
        cfg.update(optimizer="sgd", sgd_momentum=0.9)
    if args.lr is not None:
        cfg.update(lr=args.lr, min_lr=args.lr / 10)
    full_cfg = mg.normalize_config(dict(cfg, init_method_std=INIT_METHOD_STD))
    shapes = mg.param_shapes(full_cfg)
    weights = mg.init_weights(full_cfg, seed=SEED, perturb_extras=0.05, dtype=np.float32)
    tokens, mask = make_data(cfg, SEED + 1)

    tmp = tempfile.mkdtemp(prefix="loom_gpt_parity_")
    try:
        write_inputs(tmp, cfg, weights, tokens, mask)
        cmd = [driver, "--config", os.path.join(tmp, "config.json"),
               "--weights", os.path.join(tmp, "init.safetensors"),
               "--tokens", os.path.join(tmp, "tokens.bin"),
               "--loss-mask", os.path.join(tmp, "loss_mask.bin"),
               "--out", os.path.join(tmp, "out.safetensors")]
        print("running:", " ".join(cmd))
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, cwd=tmp, timeout=args.timeout, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        except subprocess.TimeoutExpired:
            print(f"FAIL: driver timed out after {args.timeout:.0f} s")
            return 1
        t_driver = time.time() - t0
        if proc.stdout:
            print(proc.stdout.rstrip()[-4000:])
        if proc.returncode != 0:
            print(f"FAIL: driver exited with code {proc.returncode}")
            return 1
        t0 = time.time()
        ref = mg.train_reference(full_cfg, weights, tokens, mask, dtype=ref_dtype)
        t_ref = time.time() - t0
        try:
            out = st.load_file(os.path.join(tmp, "out.safetensors"))
        except (OSError, st.SafetensorsError) as e:
            print(f"FAIL: cannot read driver output: {e}")
            return 1
        print(f"driver {t_driver:.2f} s, torch reference ({str(ref_dtype).replace('torch.', '')}) {t_ref:.2f} s; "
              f"loss {ref['loss'][0]:.6f} -> {ref['loss'][-1]:.6f}")
        rep = compare(out, ref, full_cfg, shapes, verbose=args.verbose)
        rep.print()
        ok = rep.passed()
        print("\nPASS" if ok else "\nFAIL")
        return 0 if ok else 1
    finally:
        if args.keep:
            print("inputs/outputs kept in", tmp)
        else:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
