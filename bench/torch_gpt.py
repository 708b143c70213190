#!/usr/bin/python3
"""PyTorch training-throughput peer for Loom: the Megatron GPT of tests/parity/megatron_gpt.py
(or with --arch llama the plain-PyTorch Llama of tests/parity/llama_ref.py), fp32, dropout 0, one
micro-batch per iteration: forward + backward + grad-norm clip (Megatron clip_grad 1.0; --clip 0
disables) + AdamW step.

  /usr/bin/python3 bench/torch_gpt.py --layers 12 --hidden 768 --heads 12 --seq 256 \
      --micro-batch 4 --vocab 50304 --threads 2 --steps 10

Warm-up 2 iterations, then times --steps iterations; prints one JSON line
{"tokens_per_s": ..., "step_ms": ..., ...} (tokens = micro_batch * seq per iteration).

By default the script re-executes itself once with
  * glibc malloc tunables that keep freed blocks in the heap (no mmap/munmap + page faults
    for every large activation each step), as a tuned PyTorch CPU deployment would do
    (jemalloc/tcmalloc are not installed here); --no-malloc-tune keeps the default;
  * OPENBLAS_CORETYPE removed, so OpenBLAS (torch's BLAS here) picks its kernels for the
    actual CPU (AVX-512 on this machine) instead of an inherited override such as
    "Haswell" (AVX2, about half the SGEMM rate); --openblas-coretype inherit keeps the
    environment's value, --openblas-coretype NAME forces one.
The JSON reports what was used.
"""

import argparse
import json
import os
import resource
import sys
import time

_TUNABLES = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184"


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--arch", choices=["gpt", "llama"], default="gpt")
    ap.add_argument("--groups", type=int, default=0, help="llama: key/value groups (default heads)")
    ap.add_argument("--ffn", type=int, default=0, help="default 4*hidden")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=50304, help="padded vocab size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed iterations (after 2 warm-up)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--clip", type=float, default=1.0, help="grad-norm clip (0 = off)")
    ap.add_argument("--no-malloc-tune", action="store_true")
    ap.add_argument("--openblas-coretype", default="native",
                    help="native (unset OPENBLAS_CORETYPE, default), inherit, or a core name")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--autocast", choices=["none", "bf16"], default="none",
                    help="bf16: forward under torch.autocast('cpu', bfloat16) (fp32 weights, bf16 GEMMs and activations)")
    return ap.parse_args()


def main():
    args = parse()
    if os.environ.get("_LOOM_TORCH_GPT_CHILD") is None:
        env = dict(os.environ, _LOOM_TORCH_GPT_CHILD="1",
                   _LOOM_INHERITED_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", ""))
        if not args.no_malloc_tune and "GLIBC_TUNABLES" not in env:
            env["GLIBC_TUNABLES"] = _TUNABLES
        if args.openblas_coretype == "native":
            env.pop("OPENBLAS_CORETYPE", None)
        elif args.openblas_coretype != "inherit":
            env["OPENBLAS_CORETYPE"] = args.openblas_coretype
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    # thread pools: OpenMP (aten) and the BLAS library torch links (OpenBLAS on Debian)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import torch
    import torch.nn.functional as F  # noqa: F401

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
    import megatron_gpt as mg

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = mg.normalize_config({
        "num_layers": args.layers, "hidden_size": args.hidden, "num_attention_heads": args.heads,
        "ffn_hidden_size": args.ffn or 4 * args.hidden, "seq_length": args.seq,
        "max_position_embeddings": args.seq, "padded_vocab_size": args.vocab,
        "micro_batch_size": args.micro_batch, "global_batch_size": args.micro_batch,
        "lr": 1e-4, "weight_decay": 0.1, "adam_beta1": 0.9, "adam_beta2": 0.95, "adam_eps": 1e-8,
        "clip_grad": args.clip,
    })
    if args.arch == "llama":
        import llama_ref as lr
        lc = {"hidden_size": args.hidden, "intermediate_size": args.ffn or 4 * args.hidden,
              "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
              "num_key_value_heads": args.groups or args.heads, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "tie_word_embeddings": False, "vocab_size": args.vocab, "max_position_embeddings": args.seq}
        weights = {name: torch.randn(shape) * 0.02 if not name.endswith("norm.weight") else torch.ones(shape)
                   for name, shape in lr.param_shapes(lc).items()}
        model = lr.LlamaRef(lc, weights, dtype=torch.float32)
    # Megatron init, generated with torch (much faster than numpy for 50k x h embeddings)
    std = cfg["init_method_std"]
    weights = {}
    for name, shape in ({} if args.arch == "llama" else mg.param_shapes(cfg)).items():
        if "layernorm" in name:
            weights[name] = torch.ones(shape) if name.endswith(".weight") else torch.zeros(shape)
        elif name.endswith(".bias"):
            weights[name] = torch.zeros(shape)
        elif name.endswith("linear_proj.weight") or name.endswith("linear_fc2.weight"):
            weights[name] = torch.randn(shape) * (std / (2.0 * cfg["num_layers"]) ** 0.5)
        else:
            weights[name] = torch.randn(shape) * std
    if args.arch == "gpt":
        model = mg.MegatronGPT(cfg, weights, dtype=torch.float32)
    del weights
    params = [p for _, p in model.named_megatron_parameters()]
    opt = mg.make_optimizer(model, cfg, foreach=False)  # single-tensor path is faster on CPU in 1.13

    b, s, V = args.micro_batch, args.seq, args.vocab
    n_batches = 4
    data = torch.randint(0, V, (n_batches, b, s + 1))
    mask = torch.ones(b, s)

    def step(i):
        t = data[i % n_batches]
        opt.zero_grad(set_to_none=True)
        if args.autocast == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model.loss(t[:, :-1], t[:, 1:], mask)
        else:
            loss = model.loss(t[:, :-1], t[:, 1:], mask)
        loss.backward()
        if args.clip > 0:
            norm = torch.norm(torch.stack([torch.norm(p.grad) for p in params]))
            coeff = args.clip / (float(norm) + 1e-6)
            if coeff < 1.0:
                torch._foreach_mul_([p.grad for p in params], coeff)
        opt.step()
        return float(loss)

    load_before = os.getloadavg()[0]
    for i in range(args.warmup):
        step(i)
    times = []
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t_all = time.perf_counter()
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss = step(args.warmup + i)
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_all
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    n_params = sum(p.numel() for p in params)
    print(json.dumps({
        "tokens_per_s": round(b * s * args.steps / elapsed, 2),
        "step_ms": round(1000.0 * elapsed / args.steps, 2),
        "step_ms_median": round(1000.0 * sorted(times)[len(times) // 2], 2),
        "step_ms_min": round(1000.0 * min(times), 2),
        "cpu_ms_per_step": round(1000.0 * cpu / args.steps, 1),  # ~threads*step_ms when the machine is idle
        "autocast": args.autocast,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "arch": args.arch, "layers": args.layers, "hidden": args.hidden, "heads": args.heads, "seq": s,
        "micro_batch": b, "vocab": V, "threads": args.threads, "steps": args.steps,
        "params": n_params, "final_loss": round(loss, 5), "torch": torch.__version__,
        "malloc_tune": os.environ.get("GLIBC_TUNABLES") == _TUNABLES,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "native"),
        "openblas_coretype_inherited": os.environ.get("_LOOM_INHERITED_CORETYPE") or None,
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }))


if __name__ == "__main__":
    main()
