#!/usr/bin/python3
"""`loom convert --to hf` writes a Hugging Face GPT-2 that reproduces Loom's logits.

Trains a tiny GPT with `loom train` (real checkpoint), exports it, loads config.json and
model.safetensors into a plain-PyTorch GPT-2 written against transformers' tensor names and
semantics (Conv1D weights [in, out], c_attn columns [q | k | v], gelu_new, tied lm_head), and compares its
logits with Loom's own (tests/parity/logits_driver) within 1e-5 relative."""
import json, os, subprocess, sys, tempfile
import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(__file__))
from safetensors_np import load_file  # noqa: E402

BUILD = os.environ["LOOM_BUILD_DIR"]
SRC = os.environ["LOOM_SOURCE_DIR"]
LOOM = os.path.join(BUILD, "loom")


def hf_gpt2_logits(cfg, w, tokens):
    """GPT2LMHeadModel's forward, written from transformers' definitions, in float64."""
    t = {k: torch.tensor(np.asarray(v), dtype=torch.float64) for k, v in w.items()}
    h, H = cfg["n_embd"], cfg["n_head"]
    D = h // H
    eps = cfg["layer_norm_epsilon"]
    ids = torch.tensor(tokens)
    T = len(tokens)
    x = t["transformer.wte.weight"][ids] + t["transformer.wpe.weight"][torch.arange(T)]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        a = F.layer_norm(x, (h,), t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps)
        qkv = a @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"]  # Conv1D: x @ W + b
        q, k, v = qkv.split(h, dim=-1)
        q, k, v = (z.view(T, H, D).transpose(0, 1) for z in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / (D ** 0.5)
        s = s.masked_fill(~mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(T, h)
        x = x + o @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        m = F.layer_norm(x, (h,), t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps)
        m = F.gelu(m @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"], approximate="tanh")  # gelu_new
        x = x + m @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (h,), t["transformer.ln_f.weight"], t["transformer.ln_f.bias"], eps)
    return (x @ t["transformer.wte.weight"].T).numpy()  # lm_head tied to wte


def main():
    tmp = tempfile.mkdtemp(prefix="loom_hf_")
    vocab, merges = os.path.join(SRC, "data/gpt2/vocab.json"), os.path.join(SRC, "data/gpt2/merges.txt")
    with open(os.path.join(SRC, "data/corpus/kjv.jsonl")) as f, open(os.path.join(tmp, "c.jsonl"), "w") as g:
        for _ in range(20):
            g.write(f.readline())
    run = lambda *a: subprocess.run([LOOM, *a], check=True, stdout=subprocess.DEVNULL)
    run("preprocess", "--input", os.path.join(tmp, "c.jsonl"), "--output-prefix", os.path.join(tmp, "c"),
        "--vocab-file", vocab, "--merge-file", merges, "--append-eod")
    run("train", "--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4", "--ffn-hidden-size", "96",
        "--seq-length", "16", "--micro-batch-size", "2", "--global-batch-size", "2", "--train-iters", "5",
        "--lr", "1e-3", "--init-method-std", "0.1", "--data-path", os.path.join(tmp, "c_text_document"),
        "--vocab-file", vocab, "--merge-file", merges, "--eval-iters", "0", "--save", os.path.join(tmp, "ckpt"))
    run("convert", "--load", os.path.join(tmp, "ckpt"), "--to", "hf", "--output", os.path.join(tmp, "hf"))
    cfg = json.load(open(os.path.join(tmp, "hf/config.json")))
    assert cfg["model_type"] == "gpt2" and cfg["vocab_size"] == 50257 and cfg["n_inner"] == 96, cfg
    w = load_file(os.path.join(tmp, "hf/model.safetensors"))
    assert w["transformer.h.0.attn.c_attn.weight"].shape == (64, 192)
    assert w["transformer.h.1.mlp.c_proj.weight"].shape == (96, 64)
    tokens = [464, 3303, 286, 262, 4935, 13, 198, 50256, 1870, 1793, 531, 11]
    subprocess.run([os.path.join(BUILD, "tests/logits_driver"), os.path.join(tmp, "ckpt"), os.path.join(tmp, "l.bin"),
                    *map(str, tokens)], check=True)
    ours = np.fromfile(os.path.join(tmp, "l.bin"), dtype=np.float32).reshape(len(tokens), -1)[:, :50257]
    ref = hf_gpt2_logits(cfg, w, tokens)
    err = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
    worst = np.max(np.abs(ours - ref)) / np.max(np.abs(ref))
    print(f"logits: relative error {err:.3e} (max-abs relative {worst:.3e}), tolerance 1e-5")
    if not (err <= 1e-5 and worst <= 1e-5):
        print("FAIL")
        return 1
    print("PASS")
    return 0


sys.exit(main())
