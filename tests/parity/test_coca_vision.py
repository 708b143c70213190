#!/usr/bin/python3
"""Parity: Loom's CoCa vision tower (EvaVisionTower, tests/coca_vision_driver) vs a plain-PyTorch EVA-02 ViT
with open_clip's attentional poolers, written here from EVA-CLIP's eva_vit_model.py / rope.py and
open_clip's AttentionalPooler (nn.MultiheadAttention itself is torch's).

  1. A small tower (2 blocks, width 64, 4 heads, 32 px images, patch 8 -> 16 patches, 4 pooler queries,
     E 32) with random weights (every bias and norm nonzero), random images and random upstream gradients
     of both outputs: latent and tokens, and every parameter's gradient, within 1e-5 relative
     (||a - b|| / ||b||) of the reference in float64, or where float32 PyTorch is itself further than that
     from float64, within 3x its distance; once without and once with full recompute.
     The largest error (about 5e-6, attn_pool_contrastive's query and ln_q) is fp32's own: PyTorch in
     float32 is as far from float64 there (one query over 4 keys that share the key bias, whose
     contribution to the query gradient cancels exactly only in exact arithmetic).
  2. The 2D RoPE table of the B/16 shape against EVA's VisionRotaryEmbeddingFast computed here in fp32
     ("Shape of rope freq: torch.Size([196, 64])").

Options: --keep (keep the temp dir), --verbose. Exit codes: 0 pass, 1 mismatch, 77 driver not built.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

CONFIG = {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "heads": 4, "mlp_hidden": 96,
          "rope_pt_grid": 16, "pooler_queries": 4, "pooler_heads": 4, "embed_dim": 32, "batch": 3,
          "recompute": 0}
TOL = 1e-5
FP32_FACTOR = 3.0  # where fp32 itself is further than TOL from float64: within 3x PyTorch fp32's distance
TINY = 1e-30


# ---- EVA-02 pieces (EVA-CLIP's eva_vit_model.py / rope.py semantics) ----

def rotate_half(x):
    # EVA's interleaved rotate_half: pairs (2i, 2i+1) -> (-x[2i+1], x[2i]).
    x = x.reshape(*x.shape[:-1], -1, 2)
    x1, x2 = x.unbind(-1)
    return torch.stack((-x2, x1), dim=-1).reshape(*x.shape[:-2], -1)


def eva_rope_table(half_dim, pt_seq_len, ft_seq_len, theta=10000, dtype=torch.float32):
    """VisionRotaryEmbeddingFast's freqs_cos / freqs_sin: [ft^2, 2 * half_dim]."""
    freqs = 1. / (theta ** (torch.arange(0, half_dim, 2)[:(half_dim // 2)].float() / half_dim))
    t = torch.arange(ft_seq_len) / ft_seq_len * pt_seq_len
    freqs = torch.einsum('..., f -> ... f', t, freqs)
    freqs = torch.repeat_interleave(freqs, 2, dim=-1)  # einops '... n -> ... (n r)', r=2
    n = ft_seq_len
    freqs = torch.cat((freqs[:, None, :].expand(n, n, -1), freqs[None, :, :].expand(n, n, -1)), dim=-1)
    freqs = freqs.to(dtype)
    return freqs.cos().reshape(-1, freqs.shape[-1]), freqs.sin().reshape(-1, freqs.shape[-1])


class EvaAttention(nn.Module):
    def __init__(self, dim, heads, rope_cos, rope_sin):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.inner_attn_ln = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, dim)
        self.rope_cos, self.rope_sin = rope_cos, rope_sin

    def rope(self, t):
        return t * self.rope_cos + rotate_half(t) * self.rope_sin

    def forward(self, x):
        B, N, C = x.shape
        q = F.linear(x, self.q_proj.weight, self.q_bias).reshape(B, N, self.heads, -1).permute(0, 2, 1, 3)
        k = F.linear(x, self.k_proj.weight, None).reshape(B, N, self.heads, -1).permute(0, 2, 1, 3)
        v = F.linear(x, self.v_proj.weight, self.v_bias).reshape(B, N, self.heads, -1).permute(0, 2, 1, 3)
        q = torch.cat((q[:, :, :1, :], self.rope(q[:, :, 1:, :])), -2)  # CLS (token 0) not rotated
        k = torch.cat((k[:, :, :1, :], self.rope(k[:, :, 1:, :])), -2)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, -1)
        return self.proj(self.inner_attn_ln(x))


class SwiGLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(dim, hidden)
        self.ffn_ln = nn.LayerNorm(hidden, eps=1e-6)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.w3(self.ffn_ln(F.silu(self.w1(x)) * self.w2(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, rope_cos, rope_sin):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = EvaAttention(dim, heads, rope_cos, rope_sin)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = SwiGLU(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AttentionalPooler(nn.Module):
    """open_clip's AttentionalPooler."""

    def __init__(self, d_model, context_dim, n_head, n_queries):
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        self.attn = nn.MultiheadAttention(d_model, n_head, kdim=context_dim, vdim=context_dim)
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_k = nn.LayerNorm(context_dim)

    def forward(self, x):
        x = self.ln_k(x).permute(1, 0, 2)  # NLD -> LND
        N = x.shape[1]
        q = self.ln_q(self.query)
        out = self.attn(q.unsqueeze(1).repeat(1, N, 1), x, x, need_weights=False)[0]
        return out.permute(1, 0, 2)  # LND -> NLD


class Visual(nn.Module):
    def __init__(self, c, rope_dtype=torch.float64):
        super().__init__()
        W, P, E = c["width"], c["patch_size"], c["embed_dim"]
        grid = c["image_size"] // P
        cos, sin = eva_rope_table(W // c["heads"] // 2, c["rope_pt_grid"], grid, dtype=rope_dtype)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, W))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, W))
        self.proj = nn.Parameter(torch.zeros(E, E))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, W, kernel_size=P, stride=P)
        self.blocks = nn.ModuleList([Block(W, c["heads"], c["mlp_hidden"], cos, sin) for _ in range(c["layers"])])
        self.attn_pool = AttentionalPooler(E, W, c["pooler_heads"], c["pooler_queries"])
        self.attn_pool_contrastive = AttentionalPooler(E, E, c["pooler_heads"], 1)
        self.ln_post = nn.LayerNorm(E, eps=1e-6)

    def forward(self, images):
        x = self.patch_embed.proj(images).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        tokens = self.ln_post(self.attn_pool(x))
        pooled = self.attn_pool_contrastive(tokens)[:, 0]
        return pooled @ self.proj, tokens


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm((a - b).ravel()) / max(float(np.linalg.norm(b.ravel())), TINY))


def run(driver, args, timeout=300):
    p = subprocess.run([driver] + args, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(1)


def check_tower(driver, tmp, recompute, verbose):
    cfg = dict(CONFIG, recompute=recompute)
    torch.manual_seed(1234)
    model = Visual(cfg).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_q.weight") or name.endswith("ln_k.weight") or "norm" in name or name.endswith("ln.weight") \
                    or name.endswith("ln_post.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * (0.2 if p.ndim == 1 else 1.0 / math.sqrt(p.shape[-1] if p.ndim == 2 else p[0].numel())))
        model.pos_embed.mul_(5.0)
        model.cls_token.mul_(5.0)
    names = [n for n, _ in model.named_parameters()]
    B, S, E, Q = cfg["batch"], cfg["image_size"], cfg["embed_dim"], cfg["pooler_queries"]
    g = torch.Generator().manual_seed(99)
    images = torch.randn(B, 3, S, S, generator=g, dtype=torch.float64)
    d_latent = torch.randn(B, E, generator=g, dtype=torch.float64)
    d_tokens = torch.randn(B, Q, E, generator=g, dtype=torch.float64)
    # The inputs as the driver sees them (fp32); the reference runs in float64 on the same values.
    f32 = lambda t: t.detach().float().numpy()  # noqa: E731
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(p.float().double())
    images, d_latent, d_tokens = (t.float().double() for t in (images, d_latent, d_tokens))
    tensors = {("visual." + n): f32(p) for n, p in model.named_parameters()}
    tensors.update(images=f32(images), d_latent=f32(d_latent), d_tokens=f32(d_tokens))
    st.save_file(tensors, os.path.join(tmp, "in.safetensors"))
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f)
    run(driver, ["--config", os.path.join(tmp, "config.json"), "--in", os.path.join(tmp, "in.safetensors"),
                 "--out", os.path.join(tmp, "out.safetensors")])
    out = st.load_file(os.path.join(tmp, "out.safetensors"))

    # The same model in float32 PyTorch: fp32's own distance from float64 on each tensor, the yardstick where
    # cancellation makes it exceed TOL (the summation order, hence that distance, depends on the BLAS kernel:
    # OpenBLAS's Haswell/Zen kernels 5.4e-6 on attn_pool_contrastive's ln_q, its SkylakeX kernels 1.2e-5).
    model32 = Visual(cfg, rope_dtype=torch.float32).float()
    model32.load_state_dict(model.state_dict())  # the same (fp32-representable) values, cast
    latent32, tokens32 = model32(images.float())
    ((latent32 * d_latent.float()).sum() + (tokens32 * d_tokens.float()).sum()).backward()
    latent, tokens = model(images)
    ((latent * d_latent).sum() + (tokens * d_tokens).sum()).backward()
    errs = [("latent", rel(out["latent"], latent.detach().numpy()), rel(latent32.detach().numpy(), latent.detach().numpy())),
            ("tokens", rel(out["tokens"], tokens.detach().numpy()), rel(tokens32.detach().numpy(), tokens.detach().numpy()))]
    for (n, p), p32 in zip(model.named_parameters(), model32.parameters()):
        errs.append(("grad.visual." + n, rel(out["grad.visual." + n], p.grad.numpy()), rel(p32.grad.numpy(), p.grad.numpy())))
    ok = True
    label = "recompute" if recompute else "no recompute"
    worst = max(errs, key=lambda e: e[1])
    for n, e, e32 in errs:
        tol = max(TOL, FP32_FACTOR * e32)  # within 1e-5, or no further from float64 than PyTorch's fp32 allows
        bad = not (math.isfinite(e) and e <= tol)
        ok &= not bad
        if verbose or bad or tol > TOL:
            print(f"  {label:<12} {n:<58} {e:.3e} (PyTorch fp32 {e32:.3e}, tol {tol:.1e}) {'FAIL' if bad else 'ok'}")
    print(f"tower ({label}): {len(errs)} tensors ({len(names)} gradients), worst {worst[0]} {worst[1]:.3e} "
          f"(tol {TOL:.0e}, or {FP32_FACTOR:g}x PyTorch fp32): {'ok' if ok else 'FAIL'}")
    return ok


def check_rope(driver, tmp):
    path = os.path.join(tmp, "rope.safetensors")
    run(driver, ["--rope", "64", "14", "16", "--out", path])
    out = st.load_file(path)
    cos, sin = eva_rope_table(768 // 12 // 2, 16, 224 // 16)  # EVA02-B/16: half_head_dim 32, pt 16, ft 14
    ok = tuple(cos.shape) == (196, 64) and out["freqs_cos"].shape == (196, 64)
    err = max(float(np.abs(out["freqs_cos"] - cos.numpy()).max()), float(np.abs(out["freqs_sin"] - sin.numpy()).max()))
    ok &= err <= 2e-6  # torch's fp32 cos/sin vs correctly rounded ones: about 1 ulp
    print(f"rope table B/16: shape {tuple(cos.shape)}, max abs difference {err:.2e}: {'ok' if ok else 'FAIL'}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    build = os.environ.get("LOOM_BUILD_DIR")
    driver = os.path.join(build, "tests", "coca_vision_driver") if build else ""
    if not (driver and os.access(driver, os.X_OK)):
        print(f"driver not found: {driver or 'LOOM_BUILD_DIR is not set'}")
        return 77
    tmp = tempfile.mkdtemp(prefix="loom_coca_vision_")
    try:
        ok = check_rope(driver, tmp)
        ok &= check_tower(driver, tmp, 0, args.verbose)
        ok &= check_tower(driver, tmp, 1, args.verbose)
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
