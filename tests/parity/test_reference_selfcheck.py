#!/usr/bin/python3
"""Self-checks of the torch reference (megatron_gpt.py) and the safetensors reader/writer.

  1. safetensors_np round trip (all dtypes, metadata, 8-byte header padding, BF16, bad files)
  2. forward vs an independent numpy implementation (explicit per-head loops), float64
  3. autograd vs central finite differences of the accumulated Megatron loss, float64
  4. QKV layout property: the key-bias gradient is ~0 (softmax shift invariance), q/v not
  5. OptimizerParamScheduler values (warmup / cosine / linear / constant / past decay)
  6. one training step (clip + AdamW param groups) vs a hand-written numpy update
Runs in a few seconds; exits non-zero on failure.
"""

import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import megatron_gpt as mg  # noqa: E402
import safetensors_np as st  # noqa: E402

FAILURES = []


def wmax(*vals):
    """max that propagates NaN (as inf) instead of silently dropping it."""
    vals = [float(v) for v in vals]
    return math.inf if any(math.isnan(v) for v in vals) else max(vals)


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILURES.append(what)


TINY = {
    "num_layers": 2, "hidden_size": 8, "num_attention_heads": 2, "ffn_hidden_size": 16,
    "seq_length": 5, "max_position_embeddings": 7, "padded_vocab_size": 11,
    "micro_batch_size": 2, "global_batch_size": 4, "steps": 3, "lr": 1e-2, "min_lr": 1e-3,
    "lr_decay_style": "cosine", "lr_warmup_iters": 1, "lr_decay_iters": 3, "weight_decay": 0.1,
    "adam_beta1": 0.9, "adam_beta2": 0.95, "adam_eps": 1e-8, "clip_grad": 0.05,
    "layernorm_epsilon": 1e-5, "init_method_std": 0.3,
}


# ----------------------------------------------------------------------------- 1. safetensors

def test_safetensors():
    rng = np.random.default_rng(0)
    tensors = {
        "f64": rng.standard_normal((2, 3)),
        "f32": rng.standard_normal((4, 5)).astype(np.float32),
        "f16": rng.standard_normal((3,)).astype(np.float16),
        "i64": rng.integers(-2**40, 2**40, size=(2, 2), dtype=np.int64),
        "i32": rng.integers(-2**30, 2**30, size=(7,), dtype=np.int32),
        "u8": np.arange(5, dtype=np.uint8),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "bf": np.array([1.0, -2.5, 3.14159, 1e-3, 65504.0], dtype=np.float32),
    }
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "a.safetensors")
        st.save_file(tensors, p, metadata={"format": "pt"}, bf16=["bf"])
        raw = open(p, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        check((8 + n) % 8 == 0 and raw[8 + n - 1:8 + n] in (b" ", b"}"), "header padded to a multiple of 8")
        back, meta = st.load_file(p, with_metadata=True)
        check(meta == {"format": "pt"}, "metadata round trip")
        same = all(np.array_equal(back[k], v) and back[k].dtype == v.dtype and back[k].shape == v.shape
                   for k, v in tensors.items() if k != "bf")
        check(same, "F64/F32/F16/I64/I32/U8/scalar/empty round trip bit-exact")
        _, hdr = st.load_header(p)
        check(hdr["bf"]["dtype"] == "BF16" and back["bf"].dtype == np.float32, "BF16 written, read as float32")
        check(np.allclose(back["bf"], tensors["bf"], rtol=2 ** -8), "BF16 values within bf16 precision")
        bits = st.float32_to_bf16_bits(np.array([1.0, 1.00390625, 1.01171875, -0.0], dtype=np.float32))
        # 1+2^-8 is a tie -> even (0x3F80); 1+3*2^-8 is a tie -> even (0x3F82)
        check(list(bits) == [0x3F80, 0x3F80, 0x3F82, 0x8000], "float32->bf16 round to nearest even")
        raw_bits = st.load_file(p, bf16_raw=True)["bf"]
        check(raw_bits.dtype == np.uint16, "bf16_raw returns uint16 bits")
        # a file written by hand (reference layout), header without padding
        hb = b'{"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}'
        q = os.path.join(d, "b.safetensors")
        open(q, "wb").write(struct.pack("<Q", len(hb)) + hb + struct.pack("<2i", 7, -9))
        check(list(st.load_file(q)["x"]) == [7, -9], "reads unpadded external file")
        bad = 0
        for blob in (raw[:-1], raw[:5], struct.pack("<Q", 10 ** 12) + raw[8:], raw + b"\0\0"):
            open(q, "wb").write(blob)
            try:
                st.load_file(q)
            except st.SafetensorsError:
                bad += 1
        check(bad == 4, "rejects truncated / bad-length / trailing-bytes files")


# ----------------------------------------------------------------------------- 2. numpy forward

def np_layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_forward(cfg, W, tokens):
    """Independent float64 implementation: explicit per-head attention loops."""
    c = mg.normalize_config(cfg)
    h, nh = c["hidden_size"], c["num_attention_heads"]
    D = h // nh
    eps = c["layernorm_epsilon"]
    B, T = tokens.shape
    x = W["embedding.word_embeddings.weight"][tokens] + W["embedding.position_embeddings.weight"][np.arange(T)][None]
    for i in range(c["num_layers"]):
        p = f"decoder.layers.{i}."
        y = np_layernorm(x, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], eps)
        qkv = y @ W[p + "self_attention.linear_qkv.weight"].T + W[p + "self_attention.linear_qkv.bias"]
        ctx = np.zeros((B, T, h))
        for n in range(nh):
            q = qkv[:, :, n * 3 * D: n * 3 * D + D]
            k = qkv[:, :, n * 3 * D + D: n * 3 * D + 2 * D]
            v = qkv[:, :, n * 3 * D + 2 * D: n * 3 * D + 3 * D]
            for bb in range(B):
                for t in range(T):
                    s = np.array([q[bb, t] @ k[bb, u] / math.sqrt(D) for u in range(t + 1)])
                    pr = np.exp(s - s.max())
                    pr /= pr.sum()
                    ctx[bb, t, n * D:(n + 1) * D] = pr @ v[bb, :t + 1]
        x = x + ctx @ W[p + "self_attention.linear_proj.weight"].T + W[p + "self_attention.linear_proj.bias"]
        y = np_layernorm(x, W[p + "pre_mlp_layernorm.weight"], W[p + "pre_mlp_layernorm.bias"], eps)
        u = y @ W[p + "mlp.linear_fc1.weight"].T + W[p + "mlp.linear_fc1.bias"]
        u = 0.5 * u * (1.0 + np.tanh(0.7978845608028654 * (u + 0.044715 * u ** 3)))
        x = x + u @ W[p + "mlp.linear_fc2.weight"].T + W[p + "mlp.linear_fc2.bias"]
    x = np_layernorm(x, W["decoder.final_layernorm.weight"], W["decoder.final_layernorm.bias"], eps)
    return x @ W["embedding.word_embeddings.weight"].T


def np_loss(logits, labels, mask):
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[..., 0]
    tok = lse - np.take_along_axis(logits, labels[..., None], -1)[..., 0]
    return (tok * mask).sum() / mask.sum()


def tiny_data(cfg, seed=5):
    rng = np.random.default_rng(seed)
    S, B, T, V = cfg["steps"], cfg["global_batch_size"], cfg["seq_length"], cfg["padded_vocab_size"]
    tok = rng.integers(0, V, size=(S, B, T + 1)).astype(np.int32)
    mask = (rng.random((S, B, T)) > 0.3).astype(np.float32)
    mask[:, :, 0] = 1.0
    return tok, mask


def test_forward(W, tok, mask):
    model = mg.MegatronGPT(TINY, W, dtype=torch.float64)
    t = tok[0]
    inp, lab = t[:, :-1].astype(np.int64), t[:, 1:].astype(np.int64)
    with torch.no_grad():
        logits = model(torch.from_numpy(inp)).numpy()
        loss = float(model.loss(torch.from_numpy(inp), torch.from_numpy(lab), torch.from_numpy(mask[0])))
    ref = np_forward(TINY, W, inp)
    err = wmax(np.abs(logits - ref).max() / np.abs(ref).max())
    check(err < 1e-12, f"forward logits == numpy per-head implementation (rel {err:.1e})")
    lref = np_loss(ref, lab, mask[0].astype(np.float64))
    check(abs(loss - lref) < 1e-12 * abs(lref), f"masked CE loss == numpy ({loss:.12f} vs {lref:.12f})")
    g = torch.linspace(-4, 4, 101, dtype=torch.float64)
    check(torch.allclose(torch.nn.functional.gelu(g, approximate="tanh"), mg.gelu_tanh(g), atol=1e-15, rtol=0),
          "F.gelu(approximate='tanh') == explicit tanh formula")


# ----------------------------------------------------------------------------- 3/4. gradients

def accumulated_loss(model, tok_it, mask_it, cfg):
    M = cfg["global_batch_size"] // cfg["micro_batch_size"]
    total = 0.0
    for inp, lab, msk in mg.split_batch(torch.from_numpy(tok_it).long(), torch.from_numpy(mask_it).double(),
                                        cfg["micro_batch_size"]):
        total = total + model.loss(inp, lab, msk) / M
    return total


def test_finite_differences(W, tok, mask):
    cfg = mg.normalize_config(TINY)
    model = mg.MegatronGPT(cfg, W, dtype=torch.float64)
    accumulated_loss(model, tok[0], mask[0], cfg).backward()
    grads = {n: p.grad.clone() for n, p in model.named_megatron_parameters()}
    ref = mg.train_reference(cfg, W, tok, mask, dtype=torch.float64, steps=1)
    same = wmax(*[(torch.from_numpy(ref["grads0"][n]) - grads[n]).abs().max() for n in grads])
    check(same < 1e-14, f"train_reference iteration-0 grads == sum_j grad(loss_j / M) ({same:.1e})")

    rng = np.random.default_rng(3)
    h = 1e-5
    worst_dir, worst_elem = 0.0, 0.0
    with torch.no_grad():
        for n, prm in model.named_megatron_parameters():
            # directional derivative along a random direction over the whole tensor
            d = torch.from_numpy(rng.standard_normal(tuple(prm.shape)))
            d /= d.norm()
            base = prm.clone()
            prm.copy_(base + h * d); lp = float(accumulated_loss(model, tok[0], mask[0], cfg))
            prm.copy_(base - h * d); lm = float(accumulated_loss(model, tok[0], mask[0], cfg))
            prm.copy_(base)
            fd = (lp - lm) / (2 * h)
            an = float((grads[n] * d).sum())
            worst_dir = wmax(worst_dir, abs(fd - an) / max(float(grads[n].norm()), 1e-12))  # |d| = 1
            # a few single elements
            flat = prm.view(-1)
            for idx in rng.choice(flat.numel(), size=min(3, flat.numel()), replace=False):
                v = float(flat[idx])
                flat[idx] = v + h; lp = float(accumulated_loss(model, tok[0], mask[0], cfg))
                flat[idx] = v - h; lm = float(accumulated_loss(model, tok[0], mask[0], cfg))
                flat[idx] = v
                fd = (lp - lm) / (2 * h)
                an = float(grads[n].view(-1)[idx])
                worst_elem = wmax(worst_elem, abs(fd - an) / max(abs(an), 1e-3 * float(grads[n].norm()), 1e-12))
    check(worst_dir < 1e-7, f"finite differences, random directions, all {len(grads)} tensors (worst rel {worst_dir:.1e})")
    check(worst_elem < 1e-5, f"finite differences, single elements (worst rel {worst_elem:.1e})")

    # QKV layout: adding a constant to every key shifts each score row uniformly -> zero key-bias grad.
    D = cfg["hidden_size"] // cfg["num_attention_heads"]
    gb = grads["decoder.layers.0.self_attention.linear_qkv.bias"].view(cfg["num_attention_heads"], 3, D)
    check(float(gb[:, 1].abs().max()) < 1e-14 and float(gb[:, 0].abs().min()) > 0 and float(gb[:, 2].abs().min()) > 0,
          "key-bias grad == 0, query/value-bias grads != 0 (per-head [q|k|v] layout)")


# ----------------------------------------------------------------------------- 5. scheduler

def test_scheduler():
    cfg = dict(TINY, lr=1e-3, min_lr=1e-4, lr_warmup_iters=3, lr_decay_iters=20, global_batch_size=4, steps=20)
    s = mg.MegatronLRScheduler(cfg)
    lrs = [s.lr_for_iteration(k) for k in range(25)]
    exp = []
    for k in range(25):
        n = 4 * k
        if n <= 12:
            exp.append(1e-3 * n / 12)
        elif n > 80:
            exp.append(1e-4)
        else:
            exp.append(1e-4 + 0.9e-3 * 0.5 * (math.cos(math.pi * (n - 12) / 68) + 1))
    check(max(abs(a - b) for a, b in zip(lrs, exp)) < 1e-18, "cosine schedule with warmup (samples-based)")
    check(lrs[0] == 0.0 and lrs[3] == 1e-3 and lrs[20] == 1e-4 + 0.0 and lrs[21] == 1e-4,
          "lr(0)=0, lr(warmup end)=max, lr(decay end)=min, past decay = min")
    lin = mg.MegatronLRScheduler(dict(cfg, lr_decay_style="linear", lr_warmup_iters=0))
    check(abs(lin.lr_for_iteration(10) - (1e-4 + 0.9e-3 * 0.5)) < 1e-18 and lin.lr_for_iteration(0) == 1e-3,
          "linear decay, no warmup")
    con = mg.MegatronLRScheduler(dict(cfg, lr_decay_style="constant"))
    check(con.lr_for_iteration(1) == 1e-3 / 3 and con.lr_for_iteration(50) == 1e-3, "constant after warmup")
    s2 = mg.MegatronLRScheduler(cfg)
    seq = []
    for _ in range(5):
        seq.append(s2.get_lr()); s2.step()
    check(seq == lrs[:5], "step() advances by global_batch samples")


# ----------------------------------------------------------------------------- 6. optimizer step

def test_optimizer_step(W, tok, mask):
    cfg = mg.normalize_config(dict(TINY, steps=2))
    ref = mg.train_reference(cfg, W, tok, mask, dtype=torch.float64, steps=2)
    # manual: iteration 0 has lr 0 (warmup from 0), iteration 1 has lr = max_lr
    sched = mg.MegatronLRScheduler(cfg)
    b1, b2, eps, wd = cfg["adam_beta1"], cfg["adam_beta2"], cfg["adam_eps"], cfg["weight_decay"]
    P = {n: np.asarray(v, dtype=np.float64).copy() for n, v in W.items()}
    m = {n: np.zeros_like(v) for n, v in P.items()}
    v2 = {n: np.zeros_like(v) for n, v in P.items()}
    norms = []
    for k in range(2):
        model = mg.MegatronGPT(cfg, P, dtype=torch.float64)
        accumulated_loss(model, tok[k], mask[k], cfg).backward()
        G = {n: p.grad.numpy().copy() for n, p in model.named_megatron_parameters()}
        norm = math.sqrt(sum(float((g ** 2).sum()) for g in G.values()))
        norms.append(norm)
        coeff = cfg["clip_grad"] / (norm + 1e-6)
        lr = sched.lr_for_iteration(k)
        for n in P:
            g = G[n] * coeff if coeff < 1 else G[n]
            decay = 0.0 if mg.is_no_weight_decay(n, P[n].shape) else wd
            P[n] = P[n] * (1 - lr * decay)
            m[n] = b1 * m[n] + (1 - b1) * g
            v2[n] = b2 * v2[n] + (1 - b2) * g * g
            mh = m[n] / (1 - b1 ** (k + 1))
            vh = v2[n] / (1 - b2 ** (k + 1))
            P[n] = P[n] - lr * mh / (np.sqrt(vh) + eps)
    check(norms[0] > cfg["clip_grad"] and norms[1] > cfg["clip_grad"], "clipping is active in this check")
    check(np.allclose(ref["grad_norm"], norms, rtol=1e-12, atol=0), "pre-clip grad norms match")
    err = wmax(*[np.abs(ref["final"][n] - P[n]).max() for n in P])
    check(err < 1e-13, f"2 steps of clip + AdamW(decoupled wd, no wd on 1-D) match numpy ({err:.1e})")
    check(not mg.is_no_weight_decay("embedding.word_embeddings.weight", (11, 8))
          and mg.is_no_weight_decay("decoder.final_layernorm.weight", (8,)), "embeddings decayed, LayerNorm not")


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    test_safetensors()
    W = mg.init_weights(TINY, seed=7, perturb_extras=0.1, dtype=np.float64)
    tok, mask = tiny_data(mg.normalize_config(TINY))
    test_forward(W, tok, mask)
    test_finite_differences(W, tok, mask)
    test_scheduler()
    test_optimizer_step(W, tok, mask)
    print(f"\n{'FAIL: ' + str(len(FAILURES)) + ' check(s)' if FAILURES else 'PASS'}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
