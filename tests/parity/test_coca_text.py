#!/usr/bin/python3
"""Parity of CoCa's text tower and caption decoder (models/coca/clip_text, multimodal_decoder) with a
plain-PyTorch reimplementation of open_clip's TextTransformer, MultimodalTransformer and CoCaLoss's caption
term, written here: the same weights (random, nonzero biases) and batch (random pad positions), one forward
and backward. The reference runs in float64 on the fp32 weights, and as open_clip's training step does it:
the decoder over all ctx tokens, logits[:, :-1] against text[:, 1:], CrossEntropyLoss(ignore_index=0).
Checked within 1e-5 (relative to each tensor's largest element): the text latent, the caption loss, the
gradient of the image tokens and of every parameter; the parameter names, shapes and order are the
reference modules' named_parameters() (open_clip's module tree)."""
import math
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
DRIVER = os.path.join(BUILD, "tests", "coca_text_driver")

VOCAB, CTX, WIDTH, LAYERS, HEADS, MLP, QUERIES, DEC_LAYERS, DEC_HEADS, BATCH = 100, 16, 32, 2, 4, 128, 4, 2, 4, 5
SCALE = 2.0  # d total / d caption loss (CoCa's caption weight)


class Attention(nn.Module):
    """open_clip's Attention with dim == kdim: packed in_proj [3d, d] = [q; k; v] rows, then out_proj."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, kv=None, mask=None):
        kv = x if kv is None else kv
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        q, k, v = F.linear(x, wq, bq), F.linear(kv, wk, bk), F.linear(kv, wv, bv)
        B, T, d = q.shape
        D = d // self.heads
        q = q.view(B, T, self.heads, D).transpose(1, 2)
        k = k.view(B, -1, self.heads, D).transpose(1, 2)
        v = v.view(B, -1, self.heads, D).transpose(1, 2)
        att = q @ k.transpose(-1, -2) / math.sqrt(D)
        if mask is not None:
            att = att + mask
        o = att.softmax(-1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    """open_clip's ResidualAttentionBlock (exact GELU, no layer scale)."""

    def __init__(self, d, heads, mlp, cross=False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        if cross:
            self.ln_1_kv = nn.LayerNorm(d)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d, mlp)), ("gelu", nn.GELU()),
                                              ("c_proj", nn.Linear(mlp, d))]))

    def forward(self, x, kv=None, mask=None):
        if kv is not None:
            kv = self.ln_1_kv(kv)
        x = x + self.attn(self.ln_1(x), kv, mask)
        return x + self.mlp(self.ln_2(x))


def causal_mask(n, dtype):
    return torch.full((n, n), float("-inf"), dtype=dtype).triu(1)


class Transformer(nn.Module):
    def __init__(self, d, layers, heads, mlp):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(d, heads, mlp) for _ in range(layers)])


class TextTransformer(nn.Module):
    """open_clip's TextTransformer as OpenAI CLIP: no cls_emb, causal, argmax (EOT) pooling."""

    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(VOCAB, WIDTH)
        self.positional_embedding = nn.Parameter(torch.empty(CTX, WIDTH))
        self.transformer = Transformer(WIDTH, LAYERS, HEADS, MLP)
        self.ln_final = nn.LayerNorm(WIDTH)
        self.text_projection = nn.Parameter(torch.empty(WIDTH, WIDTH))

    def forward(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        mask = causal_mask(text.shape[1], x.dtype)
        for blk in self.transformer.resblocks:
            x = blk(x, mask=mask)
        x = self.ln_final(x)
        pooled = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
        return pooled @ self.text_projection, x


class MultimodalTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(WIDTH, DEC_HEADS, MLP) for _ in range(DEC_LAYERS)])
        self.cross_attn = nn.ModuleList([Block(WIDTH, DEC_HEADS, MLP, cross=True) for _ in range(DEC_LAYERS)])
        self.ln_final = nn.LayerNorm(WIDTH)
        self.text_projection = nn.Parameter(torch.empty(WIDTH, VOCAB))

    def forward(self, image_embs, text_embs):
        mask = causal_mask(text_embs.shape[1], text_embs.dtype)
        for resblock, cross in zip(self.resblocks, self.cross_attn):
            text_embs = resblock(text_embs, mask=mask)
            text_embs = cross(text_embs, kv=image_embs)
        return self.ln_final(text_embs) @ self.text_projection


class TextAndDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.text = TextTransformer()
        self.text_decoder = MultimodalTransformer()


def random_batch(rng):
    ids = np.zeros((BATCH, CTX), dtype=np.int32)
    lengths = [CTX, 3] + list(rng.integers(3, CTX, size=BATCH - 2))  # one full row, one shortest
    for b, n in enumerate(lengths):
        ids[b, 0] = VOCAB - 2  # SOT
        ids[b, 1:n - 1] = rng.integers(1, VOCAB - 2, size=n - 2)
        ids[b, n - 1] = VOCAB - 1  # EOT: the largest id, where the text is pooled
    return ids


def close(name, got, want, tol=1e-5):
    got = np.asarray(got, dtype=np.float64).ravel()
    want = np.asarray(want, dtype=np.float64).ravel()
    scale = max(np.abs(want).max(), 1e-30)
    err = np.abs(got - want).max() / scale
    ok = err <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max error {err:.2e} of scale {scale:.3e}")
    return ok


def run(recompute, fused):
    rng = np.random.default_rng(1234 + recompute)
    torch.manual_seed(5 + recompute)
    model = TextAndDecoder()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("kv.weight") \
                    or name.endswith("ln_final.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif "text_projection" in name:
                p.copy_(torch.randn_like(p) * WIDTH ** -0.5)
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn_like(p))  # every bias nonzero
            else:
                p.copy_(0.2 * torch.randn_like(p))
    model = model.double()
    ids = random_batch(rng)
    image = rng.standard_normal((BATCH, QUERIES, WIDTH)).astype(np.float32)
    dlatent = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)

    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "config.txt"), "w") as f:
            f.write(f"{VOCAB} {CTX} {WIDTH} {LAYERS} {HEADS} {MLP} {QUERIES} {DEC_LAYERS} {DEC_HEADS} {BATCH} "
                    f"{recompute} {SCALE} {fused}\n")
        params = list(model.named_parameters())
        np.concatenate([p.detach().float().numpy().ravel() for _, p in params]).tofile(os.path.join(d, "weights.bin"))
        ids.tofile(os.path.join(d, "ids.bin"))
        image.tofile(os.path.join(d, "image.bin"))
        dlatent.tofile(os.path.join(d, "dlatent.bin"))
        r = subprocess.run([DRIVER, d], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            return False
        names = [line.split() for line in open(os.path.join(d, "names.txt")).read().splitlines()]
        out = {k: np.fromfile(os.path.join(d, k + ".bin"), dtype=np.float32)
               for k in ("latent", "tokens", "dimage", "dtext", "grads")}
        loss_str, targets_str = open(os.path.join(d, "loss.txt")).read().split()

    ok = True
    want_names = [[n] + [str(s) for s in p.shape] for n, p in params]
    if names != want_names:
        print("FAIL parameter names/shapes/order differ from the reference's named_parameters():")
        for a, b in zip(names, want_names):
            if a != b:
                print("  loom", a, "torch", b)
        return False
    print(f"ok   {len(names)} parameters in named_parameters() order")

    # The reference step, as open_clip's CoCa forward + train step + CoCaLoss.
    text = torch.from_numpy(ids.astype(np.int64))
    image_t = torch.from_numpy(image).double().requires_grad_(True)
    latent, tokens = model.text(text)
    logits = model.text_decoder(image_t, tokens)[:, :-1]
    labels = text[:, 1:]
    caption = nn.CrossEntropyLoss(ignore_index=0)(logits.permute(0, 2, 1), labels)
    total = (latent * torch.from_numpy(dlatent).double()).sum() + SCALE * caption
    total.backward()

    ok &= close("text latent", out["latent"], latent.detach().numpy())
    ok &= close("text tokens (after ln_final)", out["tokens"], tokens.detach().numpy())
    ok &= close("caption loss", [float(loss_str)], [caption.item()])
    n_targets = int((labels != 0).sum())
    if int(targets_str) != n_targets:
        print(f"FAIL targets {targets_str}, want {n_targets}")
        ok = False
    ok &= close("d image tokens", out["dimage"], image_t.grad.numpy())
    at = 0
    for name, p in params:
        n = p.numel()
        ok &= close("d " + name, out["grads"][at:at + n], p.grad.numpy())
        at += n
    dtext = out["dtext"].reshape(BATCH, CTX, WIDTH)
    if np.any(dtext[:, -1] != 0):
        print("FAIL d_text_tokens is not zero at the last position")
        ok = False
    return ok


def main():
    ok = True
    for recompute, fused in ((0, 0), (1, 1)):
        print(f"--- recompute {recompute}, head gradients in the forward {fused}")
        ok &= run(recompute, fused)
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
