#!/usr/bin/python3
"""Parity: Loom's optimizer with EVA-CLIP's parameter groups (tests/optim_groups_driver) vs PyTorch.

Ten steps over a few tensors of several shapes (2-D weights, biases, norms, a position embedding and a
cls token in the skip list, a 4-D patch weight, a scalar logit_scale, one tensor of 20,800 elements so the
kernels split it into blocks), grouped by EVA-CLIP's get_parameters (written again below from
EVA-CLIP/rei/training/optim.py: tower by prefix, layer id, ld ** (num_layers + 1 - id), no decay for
ndim <= 1, .bias and the skip names) with layer decay 0.75 / 0.5, and EVA-CLIP's warmup_cosine_lr setting
every group's lr before each step. References:
  - DeepSpeed FusedLamb (deepspeed/ops/lamb/fused_lamb.py + csrc/lamb/fused_lamb_cuda_kernel.cu) written
    in plain PyTorch fp32: u = m / (sqrt(v) + eps) + wd * w (eps_inside_sqrt: sqrt(v + eps)),
    step_size = lr * sqrt(1 - b2^t) / (1 - b1^t) in fp32, coeff = clamp(||w|| / ||u||, min, max) (1 if a
    norm is 0), w -= step_size * coeff * u; with and without eps_inside_sqrt / bias_correction; and as
    DeepSpeed ZeRO-1 over 4 ranks runs it (log 000): each group flattened, padded to a multiple of 8 and
    cut into 4 pieces, one trust ratio per piece;
  - torch.optim.AdamW with the same param groups;
  - apex FusedLAMB (Loom's --optimizer lamb) in plain PyTorch: bias-corrected u, no trust ratio for
    groups without weight decay.
Weights within 1e-6 relative (max |loom - ref| / max |ref| per tensor); the groups' lr lists of every step
equal the Python schedule's repr exactly. With --mpirun MPIRUN --np N (tests/parallel/test_optim_groups_zero.sh)
the driver runs under ZeRO-1 over N processes, each updating its slice of every tensor (LAMB's norms summed
over the slices), against the same references. Exit codes: 0 pass, 1 mismatch, 77 driver not built.
"""

import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch

PARAMS = [
    ("visual.cls_token", [1, 1, 8]),
    ("visual.pos_embed", [1, 5, 8]),
    ("visual.proj", [8, 8]),
    ("visual.patch_embed.proj.weight", [8, 3, 2, 2]),
    ("visual.patch_embed.proj.bias", [8]),
    ("visual.blocks.0.norm1.weight", [8]),
    ("visual.blocks.0.attn.q_bias", [8]),
    ("visual.blocks.0.attn.q_proj.weight", [8, 8]),
    ("visual.blocks.1.mlp.w1.weight", [16, 8]),
    ("visual.blocks.1.mlp.w1.bias", [16]),
    ("text.positional_embedding", [4, 8]),
    ("text.token_embedding.weight", [20, 8]),
    ("text.transformer.resblocks.0.attn.in_proj_weight", [24, 8]),
    ("text.transformer.resblocks.0.attn.in_proj_bias", [24]),
    ("text.transformer.resblocks.1.mlp.c_fc.weight", [130, 160]),
    ("text.ln_final.weight", [8]),
    ("logit_scale", []),
]
TOWERS = [
    {"tower": "visual", "prefix": "visual.", "num_layers": 2, "lr": 2e-3, "wd": 0.05, "ld": 0.75,
     "skip": ["visual.pos_embed", "visual.cls_token"]},
    {"tower": "text", "prefix": "text.", "num_layers": 2, "lr": 5e-4, "wd": 0.1, "ld": 0.5,
     "skip": ["text.positional_embedding"]},
    {"tower": "other", "prefix": "", "num_layers": 0, "lr": 1e-3, "wd": 0.05, "ld": 1.0, "skip": ["logit_scale"]},
]
STEPS, WARMUP, TOTAL = 10, 3, 12


def layer_id(name, num_max_layer):
    # EVA-CLIP get_num_layer_for_transformer (with the fork's cross_attn.i of log 000)
    layer_0 = {"patch_embed", "pos_embed", "cls_token", "mask_token", "conv1", "positional_embedding",
               "token_embedding", "transformer.embeddings.word_embeddings",
               "transformer.embeddings.position_embeddings", "transformer.embeddings.token_type_embeddings"}
    if any(l in name for l in layer_0):
        return 0
    for rx in (r"blocks\.([0-9]+)\.", r"layer\.([0-9]+)\.", r"cross_attn\.([0-9]+)\."):
        m = re.search(rx, name)
        if m is not None:
            return int(m.group(1)) + 1
    return num_max_layer - 1


def evaclip_groups(params, towers=TOWERS):
    groups = []
    for t in towers:
        if t["prefix"]:
            members = [(n, p) for n, p in params if n.startswith(t["prefix"])]
        else:
            members = [(n, p) for n, p in params if not any(n.startswith(u["prefix"]) for u in towers if u["prefix"])]
        values = None
        if t["ld"] < 1.0:
            values = list(t["ld"] ** (t["num_layers"] + 1 - i) for i in range(t["num_layers"] + 2))
        by_name = {}
        for name, p in members:
            if p.ndim <= 1 or name.endswith(".bias") or name in t["skip"]:
                gname, wd = "no_decay", 0.
            else:
                gname, wd = "decay", t["wd"]
            lid = None
            if values is not None:
                lid = layer_id(name, len(values))
                gname = t["tower"] + "_" + "layer_%d_%s" % (lid, gname)
            if gname not in by_name:
                by_name[gname] = {"name": gname, "group": t["tower"], "weight_decay": wd, "params": [],
                                  "lr_scale": values[lid] if values is not None else 1., "lr": t["lr"], "base": t["lr"]}
            by_name[gname]["params"].append(p)
        groups.extend(by_name.values())
    return groups


def warmup_cosine(groups, step, warmup=WARMUP, total=TOTAL):
    # EVA-CLIP training/scheduler.py warmup_cosine_lr (per group's tower base lr)
    for g in groups:
        base_lr = g["base"]
        if step < warmup:
            lr = base_lr * (step + 1) / warmup
        else:
            e = step - warmup
            es = total - warmup
            # EVA-CLIP writes np.cos; numpy's AVX-512 cos (SVML) is up to 1 ulp from the C library's on
            # machines where numpy dispatches it, so EVA-CLIP's own lrs differ by an ulp between machines.
            # math.cos is the C library's cos, the one Loom calls: the lrs must then be equal exactly.
            lr = 0.5 * (1 + math.cos(math.pi * e / es)) * base_lr
        g["lr"] = float(g["lr_scale"] * lr)


class DeepSpeedFusedLamb:
    """fused_lamb_cuda_kernel.cu, element for element in fp32."""

    def __init__(self, groups, betas, eps, max_coeff, min_coeff, eps_inside_sqrt, bias_correction, pieces=0):
        self.groups, self.betas, self.eps, self.pieces = groups, betas, eps, pieces
        self.max_coeff, self.min_coeff = max_coeff, min_coeff
        self.eps_inside_sqrt, self.bias_correction = eps_inside_sqrt, bias_correction
        self.state = {}

    @torch.no_grad()
    def step(self):
        if self.pieces:
            return self.zero_step()
        self.tensor_step(self.groups)

    @torch.no_grad()
    def zero_step(self):
        # DeepSpeed ZeRO-1/2 (stage_1_and_2.py): each group flattened in order, padded to a multiple of
        # 2 x dp (nccl_start_alignment_factor), cut into dp pieces; FusedLamb sees one piece per group.
        D = self.pieces
        for g in self.groups:
            if "flat" not in g:
                n = sum(p.numel() for p in g["params"])
                padded = (n + 2 * D - 1) // (2 * D) * (2 * D)
                g["flat"] = [torch.nn.Parameter(torch.zeros(padded // D)) for _ in range(D)]
            flat = torch.cat([p.detach().reshape(-1) for p in g["params"]])
            grad = torch.cat([p.grad.reshape(-1) for p in g["params"]])
            size = g["flat"][0].numel()
            full = torch.zeros(size * D)
            fullg = torch.zeros(size * D)
            full[:flat.numel()] = flat
            fullg[:grad.numel()] = grad
            for k, piece in enumerate(g["flat"]):
                piece.data.copy_(full[k * size:(k + 1) * size])
                piece.grad = fullg[k * size:(k + 1) * size].clone()
            self.tensor_step([{"lr": g["lr"], "weight_decay": g["weight_decay"], "params": g["flat"]}])
            out = torch.cat([piece.detach() for piece in g["flat"]])
            at = 0
            for p in g["params"]:
                p.data.copy_(out[at:at + p.numel()].reshape(p.shape))
                at += p.numel()

    @torch.no_grad()
    def tensor_step(self, groups):
        b1, b2 = np.float32(self.betas[0]), np.float32(self.betas[1])
        eps = np.float32(self.eps)
        for g in groups:
            lr = np.float32(g["lr"])  # group['lr'] passed as a C++ float
            decay = np.float32(g["weight_decay"])
            for p in g["params"]:
                st = self.state.setdefault(id(p), {"step": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)})
                st["step"] += 1
                t = st["step"]
                if self.bias_correction:
                    bc1 = np.float32(1 - math.pow(float(b1), t))
                    bc2 = np.float32(1 - math.pow(float(b2), t))
                    step_size = np.float32(np.float32(lr * np.sqrt(bc2)) / bc1)
                else:
                    step_size = lr
                grad = p.grad
                m, v = st["m"], st["v"]
                m.mul_(float(b1)).add_(grad, alpha=float(np.float32(1) - b1))
                v.mul_(float(b2)).add_(grad * grad, alpha=float(np.float32(1) - b2))
                denom = (v + float(eps)).sqrt() if self.eps_inside_sqrt else v.sqrt() + float(eps)
                update = m / denom + float(decay) * p
                w_norm = p.double().norm().item()
                u_norm = update.double().norm().item()
                coeff = 1.0
                if w_norm != 0 and u_norm != 0:
                    coeff = min(max(np.float32(w_norm / u_norm), self.min_coeff), self.max_coeff)
                p.sub_(float(np.float32(step_size * np.float32(coeff))) * update)


class ApexFusedLamb:
    """apex FusedLAMB (adam_w_mode, bias correction, use_nvlamb False, no global clipping) in fp32."""

    def __init__(self, groups, betas, eps):
        self.groups, self.betas, self.eps = groups, betas, eps
        self.state = {}

    @torch.no_grad()
    def step(self):
        b1, b2 = self.betas
        for g in self.groups:
            for p in g["params"]:
                st = self.state.setdefault(id(p), {"step": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)})
                st["step"] += 1
                t = st["step"]
                m, v = st["m"], st["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).add_(p.grad * p.grad, alpha=1 - b2)
                u = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + self.eps) + g["weight_decay"] * p
                ratio = 1.0
                if g["weight_decay"] != 0:
                    wn, un = p.double().norm().item(), u.double().norm().item()
                    if wn > 0 and un > 0:
                        ratio = wn / un
                p.sub_(g["lr"] * ratio * u)


def initial_weights(rng):
    ws = {}
    for name, shape in PARAMS:
        if name == "logit_scale":
            w = np.array(math.log(1 / 0.07))
        elif name.endswith("norm1.weight") or name.endswith("ln_final.weight"):
            w = np.ones(shape)
        elif name == "visual.pos_embed":
            w = rng.standard_normal(shape) * 20.0  # ||w|| / ||u|| above max_coeff: clamped to 10
        elif name == "visual.blocks.0.attn.q_proj.weight":
            w = rng.standard_normal(shape) * 1e-4  # below min_coeff: clamped to 0.01
        else:
            w = rng.standard_normal(shape) * 0.02
        ws[name] = w.astype(np.float32)
    return ws


def run_case(driver, tmp, case, ws, gs, launch):
    cfg = {"zero": bool(launch), "optimizer": case["optimizer"], "deepspeed": case.get("deepspeed", False), "beta1": 0.9,
           "beta2": 0.999, "eps": case["eps"], "bias_correction": case.get("bias_correction", True),
           "eps_inside_sqrt": case.get("eps_inside_sqrt", False), "max_coeff": 10.0, "min_coeff": 0.01,
           "trust_partitions": case.get("pieces", 0),
           "steps": STEPS, "warmup": WARMUP, "total_steps": TOTAL,
           "params": [{"name": n, "shape": s} for n, s in PARAMS], "towers": TOWERS}
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f)
    np.concatenate([ws[n].ravel() for n, _ in PARAMS]).astype(np.float32).tofile(os.path.join(tmp, "w.bin"))
    np.concatenate([gs[s][n].ravel() for s in range(STEPS) for n, _ in PARAMS]).astype(np.float32).tofile(
        os.path.join(tmp, "g.bin"))
    r = subprocess.run(launch + [driver, "--config", os.path.join(tmp, "config.json"), "--weights", os.path.join(tmp, "w.bin"),
                        "--grads", os.path.join(tmp, "g.bin"), "--out", os.path.join(tmp, "out.bin"),
                        "--lrs", os.path.join(tmp, "lrs.txt")], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
        return False
    loom = np.fromfile(os.path.join(tmp, "out.bin"), dtype=np.float32)
    lrs_lines = open(os.path.join(tmp, "lrs.txt")).read().splitlines()

    params = [(n, torch.nn.Parameter(torch.from_numpy(ws[n].copy()))) for n, _ in PARAMS]
    groups = evaclip_groups(params)
    if case["optimizer"] == "adamw":
        opt = torch.optim.AdamW([{"params": g["params"], "weight_decay": g["weight_decay"], "lr": g["lr"]} for g in groups],
                                betas=(0.9, 0.999), eps=case["eps"])
    elif case.get("deepspeed"):
        opt = DeepSpeedFusedLamb(groups, (0.9, 0.999), case["eps"], 10.0, 0.01, case.get("eps_inside_sqrt", False),
                                 case.get("bias_correction", True), case.get("pieces", 0))
    else:
        opt = ApexFusedLamb(groups, (0.9, 0.999), case["eps"])
    ok = True
    for s in range(STEPS):
        warmup_cosine(groups, s)
        want = str([g["lr"] for g in groups])
        if lrs_lines[s] != want:
            print(f"  {case['name']} step {s}: lrs {lrs_lines[s]} != {want}")
            ok = False
        if case["optimizer"] == "adamw":
            for tg, g in zip(opt.param_groups, groups):
                tg["lr"] = g["lr"]
        for n, p in params:
            p.grad = torch.from_numpy(gs[s][n].copy())
        opt.step()
    table = [f"{g['name']} {float(g['weight_decay'])!r} {float(g['lr_scale'])!r} {len(g['params'])}" for g in groups]
    if lrs_lines[STEPS:] != table:
        print(f"  {case['name']}: groups {lrs_lines[STEPS:]} != {table}")
        ok = False
    at, worst = 0, 0.0
    for n, p in params:
        k = p.numel()
        mine, ref = loom[at:at + k], p.detach().numpy().ravel()
        at += k
        rel = float(np.max(np.abs(mine - ref)) / max(np.max(np.abs(ref)), 1e-30))
        moved = float(np.max(np.abs(ref - ws[n].ravel())))
        worst = max(worst, rel)
        if rel > 1e-6 or not np.isfinite(rel):
            print(f"  {case['name']} {n}: relative error {rel:.3e}")
            ok = False
        if moved == 0 and n != "visual.blocks.0.norm1.weight":
            print(f"  {case['name']} {n}: the reference did not move (the test would prove nothing)")
            ok = False
    print(f"{case['name']}: {len(groups)} groups, worst relative error {worst:.2e} {'ok' if ok else 'MISMATCH'}")
    return ok


def main():
    build = os.environ.get("LOOM_BUILD_DIR", "build")
    launch = []
    if "--mpirun" in sys.argv:
        np_ = sys.argv[sys.argv.index("--np") + 1]
        launch = [sys.argv[sys.argv.index("--mpirun") + 1], "--oversubscribe", "-np", np_]
        os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
        build = os.path.dirname(os.environ["LOOM"])  # the dist tests know the loom binary, in the build dir
    driver = os.path.join(build, "tests", "optim_groups_driver")
    if not os.path.exists(driver):
        print("driver not built:", driver)
        return 77
    torch.manual_seed(0)
    rng = np.random.default_rng(1234)
    ws = initial_weights(rng)
    gs = []
    for s in range(STEPS):
        g = {n: np.asarray(rng.standard_normal(shape) * 0.1, dtype=np.float32) for n, shape in PARAMS}
        g["visual.blocks.0.norm1.weight"][:] = 0  # no gradient, no decay: u = 0, coefficient 1, no move
        gs.append(g)
    cases = [
        {"name": "deepspeed-lamb", "optimizer": "lamb", "deepspeed": True, "eps": 1e-8},
        {"name": "deepspeed-lamb-eps-inside-no-bias-correction", "optimizer": "lamb", "deepspeed": True, "eps": 1e-6,
         "eps_inside_sqrt": True, "bias_correction": False},
        # Log 000's LAMB: DeepSpeed ZeRO-1 over 4 ranks, one trust ratio per piece of each flattened group.
        {"name": "deepspeed-lamb-zero1-pieces-4", "optimizer": "lamb", "deepspeed": True, "eps": 1e-8, "pieces": 4},
        {"name": "adamw", "optimizer": "adamw", "eps": 1e-8},
        {"name": "apex-lamb", "optimizer": "lamb", "eps": 1e-6},
    ]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            ok = run_case(driver, tmp, case, ws, gs, launch) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
