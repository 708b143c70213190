"""The whole CoCa in plain PyTorch, as open_clip's CoCa.forward + CoCaLoss and EVA-CLIP's training step
compute it (reference log 000), composed of the per-part references the tower tests check Loom against:

  visual        tests/parity/test_coca_vision.py Visual (EVA-02 ViT, 2D RoPE, sub-LN, SwiGLU, both poolers)
  text          a TextTransformer built from tests/parity/test_coca_text.py's Block (OpenAI CLIP layout:
                causal, exact GELU, ln_final, EOT = argmax pooling, text_projection)
  text_decoder  a MultimodalTransformer from the same Block (causal self-attention + cross-attention)
  logit_scale   a 0-dim parameter
  contrastive   tests/parallel/clip_loss_ref.py's local terms (F.normalize, logit_scale.exp(), symmetric CE)
  caption       CrossEntropyLoss(ignore_index=0) of logits[:, :-1] against text[:, 1:]
  optimizer     tests/parity/test_optim_groups.py's EVA-CLIP parameter groups, warmup_cosine_lr and the
                DeepSpeed FusedLamb reference; then EVA-CLIP's logit_scale.clamp_(0, ln 100)

Used by tests/parity/test_coca_model.py (parity with Loom's CocaModel) and bench/coca_step_torch.py (the
PyTorch side of bench/coca_step.sh). Shapes come from a config dict (SMALL is the parity test's).
"""
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "parallel"))
import clip_loss_ref  # noqa: E402
import test_coca_text  # noqa: E402
import test_coca_vision  # noqa: E402
import test_optim_groups  # noqa: E402

# The parity test's small CoCa: vision width 64 != embed_dim 32, so the first pooler has separate
# q/k/v weights (kdim != d_model) and the second a packed in_proj; rope_pt_grid 16 over a 4x4 grid
# exercises EVA's position scaling.
SMALL = {
    "image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "heads": 4, "mlp_hidden": 96, "rope_pt_grid": 16,
    "pooler_queries": 4, "pooler_heads": 4, "embed_dim": 32,
    "vocab": 100, "context": 16, "text_width": 32, "text_layers": 2, "text_heads": 4, "text_mlp": 128,
    "decoder_layers": 2, "decoder_heads": 4, "decoder_mlp": 128,
    "contrastive_weight": 1.0, "caption_weight": 2.0,
}
# bench/coca_step.sh's CoCa: big enough for GEMMs to dominate, one step in about a second on 2 cores.
# EVA's SwiGLU hidden int(W x 2.6667); 64 image tokens for 64 patches (B/16: 256 for 196); CLIP's
# context 77; a vocabulary of 8192 keeps the caption head at B/16's share of the step (CLIP's 49408 on
# width 256 would be half of it).
BENCH = dict(SMALL, image_size=64, patch_size=8, width=256, layers=4, heads=4, mlp_hidden=682, rope_pt_grid=8,
             pooler_queries=64, pooler_heads=8, embed_dim=256, vocab=8192, context=77, text_width=256,
             text_layers=4, text_heads=4, text_mlp=1024, decoder_layers=4, decoder_heads=4, decoder_mlp=1024)
LN_100 = math.log(100)


def gemm_flops_per_image(c):
    """Matrix-multiply FLOPs of one image-caption pair's forward (x3 for forward + backward), counted as
    the PyTorch model computes them: every linear layer, both attention products of every attention at
    full (unmasked) size, the patch embedding, both poolers (their queries projected per image, as
    nn.MultiheadAttention does), the projections and the caption head."""
    T, W, F, L = (c["image_size"] // c["patch_size"]) ** 2 + 1, c["width"], c["mlp_hidden"], c["layers"]
    Q, E = c["pooler_queries"], c["embed_dim"]
    C, Wt, Ft, V = c["context"], c["text_width"], c["text_mlp"], c["vocab"]
    vision = 2 * (T - 1) * 3 * c["patch_size"] ** 2 * W + L * (8 * T * W * W + 6 * T * W * F + 4 * T * T * W)
    vision += 4 * Q * E * E + 4 * T * W * E + 4 * Q * T * E  # attn_pool
    vision += 4 * E * E + 4 * Q * E * E + 4 * Q * E + 2 * E * E  # attn_pool_contrastive, proj
    block = 8 * C * Wt * Wt + 4 * C * Wt * Ft + 4 * C * C * Wt
    text = c["text_layers"] * block + 2 * Wt * E
    cross = 4 * C * Wt * Wt + 4 * Q * E * Wt + 4 * C * Q * Wt + 4 * C * Wt * c["decoder_mlp"]
    decoder = c["decoder_layers"] * (8 * C * Wt * Wt + 4 * C * Wt * c["decoder_mlp"] + 4 * C * C * Wt + cross)
    return vision + text + decoder + 2 * C * Wt * V


class TextTransformer(nn.Module):
    """open_clip's TextTransformer as OpenAI CLIP (no cls_emb): the tower test's, with shapes from c."""

    def __init__(self, c):
        super().__init__()
        W = c["text_width"]
        self.token_embedding = nn.Embedding(c["vocab"], W)
        self.positional_embedding = nn.Parameter(torch.empty(c["context"], W))
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList(
            [test_coca_text.Block(W, c["text_heads"], c["text_mlp"]) for _ in range(c["text_layers"])])
        self.ln_final = nn.LayerNorm(W)
        self.text_projection = nn.Parameter(torch.empty(W, c["embed_dim"]))

    def forward(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        mask = test_coca_text.causal_mask(text.shape[1], x.dtype)
        for blk in self.transformer.resblocks:
            x = blk(x, mask=mask)
        x = self.ln_final(x)
        pooled = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
        return pooled @ self.text_projection, x


class MultimodalTransformer(nn.Module):
    """open_clip's MultimodalTransformer: per layer resblocks.i (causal) then cross_attn.i over the image
    tokens, ln_final, text_projection to the vocabulary."""

    def __init__(self, c):
        super().__init__()
        W, H, M = c["text_width"], c["decoder_heads"], c["decoder_mlp"]
        self.resblocks = nn.ModuleList([test_coca_text.Block(W, H, M) for _ in range(c["decoder_layers"])])
        self.cross_attn = nn.ModuleList([test_coca_text.Block(W, H, M, cross=True) for _ in range(c["decoder_layers"])])
        self.ln_final = nn.LayerNorm(W)
        self.text_projection = nn.Parameter(torch.empty(W, c["vocab"]))

    def forward(self, image_embs, text_embs):
        mask = test_coca_text.causal_mask(text_embs.shape[1], text_embs.dtype)
        for resblock, cross in zip(self.resblocks, self.cross_attn):
            text_embs = resblock(text_embs, mask=mask)
            text_embs = cross(text_embs, kv=image_embs)
        return self.ln_final(text_embs) @ self.text_projection


class CoCa(nn.Module):
    def __init__(self, c, rope_dtype=torch.float64):
        super().__init__()
        self.c = c
        self.visual = test_coca_vision.Visual(c, rope_dtype=rope_dtype)
        self.text = TextTransformer(c)
        self.text_decoder = MultimodalTransformer(c)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, images, text):
        """The losses of one training step: (contrastive, caption, total)."""
        image_latent, image_tokens = self.visual(images)
        text_latent, text_tokens = self.text(text)
        logits = self.text_decoder(image_tokens, text_tokens)[:, :-1]
        labels = text[:, 1:]
        caption = nn.CrossEntropyLoss(ignore_index=0)(logits.permute(0, 2, 1), labels)
        u, v = F.normalize(image_latent, dim=-1), F.normalize(text_latent, dim=-1)
        contrastive = clip_loss_ref._local_terms(u, v, self.logit_scale, u, v, torch.arange(text.shape[0]))[0]
        total = self.c["contrastive_weight"] * contrastive + self.c["caption_weight"] * caption
        return contrastive, caption, total


def named_parameters(model):
    """Every parameter by its open_clip / EVA-CLIP name, towers in Loom's order (visual, text,
    text_decoder, logit_scale)."""
    out = []
    for tower in ("visual", "text", "text_decoder"):
        out += [(tower + "." + n, p) for n, p in getattr(model, tower).named_parameters()]
    return out + [("logit_scale", model.logit_scale)]


@torch.no_grad()
def randomize_(model, seed):
    """Random weights with every bias nonzero and every norm's weight near 1 (the tower tests' recipe)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in named_parameters(model):
        if name == "logit_scale":
            continue
        leaf = name.rsplit(".", 1)[-1]
        parent = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
        is_norm_weight = leaf == "weight" and (parent.startswith("ln") or parent.startswith("norm")
                                               or parent in ("inner_attn_ln", "ffn_ln", "ln_final", "ln_post"))
        r = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if is_norm_weight:
            p.copy_(1 + 0.1 * r)
        elif "text_projection" in name or name.endswith("visual.proj"):
            p.copy_(r * p.shape[0] ** -0.5)
        elif p.ndim == 1:
            p.copy_(0.1 * r)
        elif name.endswith("patch_embed.proj.weight"):
            p.copy_(r / math.sqrt(p[0].numel()))
        elif name.endswith("pos_embed") or name.endswith("cls_token"):
            p.copy_(r)
        else:
            p.copy_(r * 1.5 / math.sqrt(p.shape[-1]))


def random_text(c, B, gen):
    """Caption ids as CLIP's tokenizer gives them: SOT, words, EOT (the largest id, where the text tower
    pools), pad 0; lengths from 3 to the whole context (one row each of both)."""
    V, ctx = c["vocab"], c["context"]
    text = torch.zeros(B, ctx, dtype=torch.int64)
    lengths = torch.randint(3, ctx + 1, (B,), generator=gen)
    lengths[0], lengths[-1] = ctx, 3
    for b in range(B):
        n = int(lengths[b])
        text[b, 0] = V - 2
        text[b, 1:n - 1] = torch.randint(1, V - 2, (n - 2,), generator=gen)
        text[b, n - 1] = V - 1
    return text


def group_towers(c, lr, wd, ld, tower_lr=None, tower_wd=None, tower_ld=None):
    """EVA-CLIP's four towers for CoCa (src/loom/optim/coca_param_groups.cpp's resolution): per tower lr,
    wd and layer decay (falling back to the base values), no_weight_decay() skip names, "other" last."""
    tower_lr, tower_wd, tower_ld = tower_lr or {}, tower_wd or {}, tower_ld or {}
    layers = {"visual": c["layers"], "text": c["text_layers"], "text_decoder": c["decoder_layers"]}
    skip = {"visual": ["visual.pos_embed", "visual.cls_token"], "text": ["text.positional_embedding"],
            "text_decoder": []}
    towers = [{"tower": t, "prefix": t + ".", "num_layers": layers[t], "lr": tower_lr.get(t, lr),
               "wd": tower_wd.get(t, wd), "ld": tower_ld.get(t) or ld, "skip": skip[t]} for t in layers]
    towers.append({"tower": "other", "prefix": "", "num_layers": 0, "lr": lr, "wd": wd, "ld": 1.0,
                   "skip": ["logit_scale"]})
    return towers


class Trainer:
    """EVA-CLIP's train_one_epoch step on the reference model: the groups' lrs from warmup_cosine_lr,
    forward, backward of the total loss, DeepSpeed's gradient clipping (max_norm / (norm + 1e-6) when
    below 1), FusedLamb, then logit_scale clamped to [0, ln 100]."""

    def __init__(self, model, towers, warmup, total_steps, clip_norm, eps=1e-8, betas=(0.9, 0.999),
                 max_coeff=10.0, min_coeff=0.01):
        self.model, self.clip_norm = model, clip_norm
        self.warmup, self.total_steps = warmup, total_steps
        self.groups = test_optim_groups.evaclip_groups(named_parameters(model), towers)
        self.opt = test_optim_groups.DeepSpeedFusedLamb(self.groups, betas, eps, max_coeff, min_coeff,
                                                        eps_inside_sqrt=False, bias_correction=True)
        self.params = [p for _, p in named_parameters(model)]
        self.clamped = 0  # steps whose clamp changed logit_scale
        self.seconds = {}  # the last step's forward, backward and optimizer (norm, clipping, LAMB, clamp)

    def step(self, step, images, text):
        t0 = time.perf_counter()
        test_optim_groups.warmup_cosine(self.groups, step, self.warmup, self.total_steps)
        for p in self.params:
            p.grad = None
        contrastive, caption, total = self.model(images, text)
        t1 = time.perf_counter()
        total.backward()
        t2 = time.perf_counter()
        norm = torch.norm(torch.stack([p.grad.detach().double().norm() for p in self.params])).item()
        if self.clip_norm > 0:
            coeff = self.clip_norm / (norm + 1e-6)
            if coeff < 1:
                for p in self.params:
                    p.grad.mul_(coeff)
        self.opt.step()
        with torch.no_grad():
            before = self.model.logit_scale.item()
            self.model.logit_scale.clamp_(0, LN_100)
            self.clamped += self.model.logit_scale.item() != before
        self.seconds = {"forward": t1 - t0, "backward": t2 - t1, "optimizer": time.perf_counter() - t2}
        return float(contrastive), float(caption), float(total), norm
