#!/usr/bin/python3
"""Hugging Face Llama export and import against the plain-PyTorch Llama of llama_ref.py.

export: `loom train` with Llama's flags trains a tiny Llama (GPT-2 tokenizer, a few Bible chapters) and saves a
  checkpoint; `loom convert --load CKPT --to hf` writes config.json + model.safetensors; llama_ref loads them
  under HF's names and semantics and its logits equal Loom's own (tests/logits_driver) within 1e-5.
import: random reference weights written as a Hugging Face model (config.json, two safetensors shards and
  model.safetensors.index.json, the second shard in bf16); `loom convert --from hf` imports them; (a) Loom's
  logits from the imported file equal the reference's within 1e-5 (the padding columns are exactly 0);
  (b) gpt_parity_driver trains from the imported file as the reference trains (20 AdamW steps; every check of
  test_gpt_parity.py: loss and gradients within 1e-5, final weights within 1e-4). The vocabulary (500) is not
  a multiple of 128: Loom pads it to 512 with zero rows, which take part in the softmax as in Megatron, so
  the training reference is the same model with the same zero rows.
Every config must pass. PENDING (empty) may name configs reported without failing, for kernels still in
development (LOOM_LLAMA_PARITY_STRICT=1 counts them anyway).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref as lr  # noqa: E402
import megatron_gpt as mg  # noqa: E402
import safetensors_np as st  # noqa: E402
import test_gpt_parity as tg  # noqa: E402

BUILD = os.environ["LOOM_BUILD_DIR"]
SRC = os.environ["LOOM_SOURCE_DIR"]
LOOM = os.path.join(BUILD, "loom")
LOGITS = os.path.join(BUILD, "tests", "logits_driver")
PARITY = os.path.join(BUILD, "tests", "gpt_parity_driver")
TOL = 1e-5

EXPORTS = {  # loom train flags beyond the common ones
    "mha_tied": [],
    "mha_untied": ["--untie-embeddings-and-output-weights"],
    "kv_channels_24": ["--kv-channels", "24"],
    "gqa_8_2": ["--num-attention-heads", "8", "--group-query-attention", "--num-query-groups", "2"],
    "llama3_scaling": ["--use-rope-scaling", "--rope-scaling-factor", "8", "--rotary-base", "500000",
                       "--rope-scaling-original-max-position-embeddings", "8"],
    "interleaved": ["--rotary-interleaved", "--untie-embeddings-and-output-weights"],
    "gqa_biases": ["--num-attention-heads", "8", "--group-query-attention", "--num-query-groups", "2"],
}
BIASED = {"gqa_biases", "gqa_biases_untied"}  # trained/written without --disable-bias-linear: HF's attention/mlp_bias
IMPORTS = {
    "mha_untied": {},
    "mha_tied_head24": {"tie_word_embeddings": True, "head_dim": 24},
    "gqa_llama3_tied": {"num_attention_heads": 8, "num_key_value_heads": 2, "tie_word_embeddings": True,
                        "rope_theta": 500000.0,
                        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16}},
    "gqa_biases_untied": {"num_attention_heads": 8, "num_key_value_heads": 2, "attention_bias": True,
                          "mlp_bias": True},
}
IMPORT_BASE = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
               "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
               "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None,
               "tie_word_embeddings": False, "vocab_size": 500, "max_position_embeddings": 32,
               "torch_dtype": "float32"}
PENDING: set = set()
# --model llama's flags (loom train does not expand --model yet)
LLAMA_FLAGS = ["--normalization", "RMSNorm", "--swiglu", "--position-embedding-type", "rope"]
TOKENS = [464, 3303, 286, 262, 4935, 13, 198, 50256, 1870, 1793, 531, 11, 290, 262, 4534, 373]


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b)), float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def loom_logits(src, tokens, tmp):
    out = os.path.join(tmp, "logits.bin")
    subprocess.run([LOGITS, src, out, *map(str, tokens)], check=True, stderr=subprocess.PIPE)
    return np.fromfile(out, dtype=np.float32).reshape(len(tokens), -1)


def ref_logits(cfg, w, tokens):
    with torch.no_grad():
        return lr.LlamaRef(cfg, w).forward(torch.tensor([tokens])).numpy()[0]


def check_export(name, flags, tmp, data):
    d = os.path.join(tmp, "export_" + name)
    vocab, merges = os.path.join(SRC, "data/gpt2/vocab.json"), os.path.join(SRC, "data/gpt2/merges.txt")
    run = lambda *a: subprocess.run([LOOM, *a], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    biases = [] if name in BIASED else ["--disable-bias-linear"]
    run("train", *LLAMA_FLAGS, *biases, "--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4",
        "--ffn-hidden-size", "96", "--seq-length", "16", "--micro-batch-size", "2", "--global-batch-size", "2",
        "--train-iters", "3", "--lr", "1e-3", "--init-method-std", "0.1", "--data-path", data, "--vocab-file", vocab,
        "--merge-file", merges, "--eval-iters", "0", "--save", os.path.join(d, "ckpt"), *flags)
    run("convert", "--load", os.path.join(d, "ckpt"), "--to", "hf", "--output", os.path.join(d, "hf"))
    cfg = json.load(open(os.path.join(d, "hf/config.json")))
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["vocab_size"] == 50257, cfg
    assert cfg["attention_bias"] == cfg["mlp_bias"] == (name in BIASED), cfg
    w = st.load_file(os.path.join(d, "hf/model.safetensors"))
    assert set(w) == set(lr.param_shapes(cfg)), sorted(set(w) ^ set(lr.param_shapes(cfg)))
    for n, s in lr.param_shapes(cfg).items():
        assert w[n].shape == s, (n, w[n].shape, s)
    ours = loom_logits(os.path.join(d, "ckpt"), TOKENS, tmp)[:, :50257]
    err, worst = rel(ours, ref_logits(cfg, w, TOKENS))
    print(f"export {name:<16} logits relative error {err:.3e} (max-abs relative {worst:.3e})")
    return err <= TOL and worst <= TOL


def write_hf(d, cfg, w):
    """config.json, two shards (the second in bf16) and the index, as transformers' save_pretrained does."""
    os.makedirs(d, exist_ok=True)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    names = list(w)
    half = [n for n in names if n.startswith("model.layers.1.") or n in ("model.norm.weight", "lm_head.weight")]
    first = [n for n in names if n not in half]
    st.save_file({n: w[n] for n in first}, os.path.join(d, "model-00001-of-00002.safetensors"), metadata={"format": "pt"})
    st.save_file({n: w[n] for n in half}, os.path.join(d, "model-00002-of-00002.safetensors"), metadata={"format": "pt"},
                 bf16=half)
    wm = {n: "model-00001-of-00002.safetensors" for n in first}
    wm.update({n: "model-00002-of-00002.safetensors" for n in half})
    json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
    # What the reference computes with: the bf16 shard's values rounded as written.
    return {n: (st.bf16_bits_to_float32(st.float32_to_bf16_bits(w[n])) if n in half else w[n]) for n in names}


def check_import(name, extra, tmp):
    d = os.path.join(tmp, "import_" + name)
    cfg = dict(IMPORT_BASE, **extra)
    w = write_hf(os.path.join(d, "hf"), cfg, lr.init_weights(cfg, seed=7, std=0.1))
    out = os.path.join(d, "imported.safetensors")
    subprocess.run([LOOM, "convert", "--from", "hf", os.path.join(d, "hf"), "--output", out], check=True,
                   stdout=subprocess.DEVNULL)
    imported, meta = st.load_file(out, with_metadata=True)
    assert meta["vocab_size"] == "500" and meta["padded_vocab_size"] == "512" and meta["normalization"] == "RMSNorm", meta
    assert imported["embedding.word_embeddings.weight"].shape == (512, 64)
    ok = True
    # (a) logits
    tokens = [int(t) for t in np.random.default_rng(3).integers(0, 500, size=24)]
    ours = loom_logits(out, tokens, tmp)
    err, worst = rel(ours[:, :500], ref_logits(cfg, w, tokens))
    pad = float(np.max(np.abs(ours[:, 500:])))
    print(f"import {name:<16} logits relative error {err:.3e} (max-abs relative {worst:.3e}), padding logits {pad:.1e}")
    ok &= err <= TOL and worst <= TOL and pad == 0.0
    # (b) training from the imported file, against the reference holding the same zero padding rows
    padded = dict(cfg, vocab_size=512)
    wp = dict(w)
    for n in ("model.embed_tokens.weight", "lm_head.weight"):
        if n in wp:
            wp[n] = np.concatenate([w[n], np.zeros((12, 64), np.float32)])
    train = dict(tg.CONFIG)
    train.update(num_layers=2, hidden_size=64, num_attention_heads=cfg["num_attention_heads"], ffn_hidden_size=96,
                 max_position_embeddings=32, padded_vocab_size=512, vocab_size=500, **lr.loom_arch(cfg))
    full = mg.normalize_config(dict(train))
    tokens, mask = tg.make_data(dict(full, padded_vocab_size=500), 11)  # targets never in the padding
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(train, f)
    tokens.astype("<i4").tofile(os.path.join(d, "tokens.bin"))
    mask.astype("<f4").tofile(os.path.join(d, "mask.bin"))
    subprocess.run([PARITY, "--config", os.path.join(d, "config.json"), "--weights", out, "--tokens",
                    os.path.join(d, "tokens.bin"), "--loss-mask", os.path.join(d, "mask.bin"), "--out",
                    os.path.join(d, "out.safetensors")], check=True, stderr=subprocess.PIPE)
    ref = mg.train_reference(full, wp, tokens, mask, dtype=torch.float64,
                             model_factory=lambda c, ww, dtype: lr.LlamaRef(padded, ww, dtype=dtype))
    ref["grads0"], ref["final"] = lr.to_loom(padded, ref["grads0"]), lr.to_loom(padded, ref["final"])
    got = st.load_file(os.path.join(d, "out.safetensors"))
    print(f"import {name:<16} training: loss {ref['loss'][0]:.6f} -> {ref['loss'][-1]:.6f}")
    rep = tg.compare(got, ref, full, {n: a.shape for n, a in lr.to_loom(padded, wp).items()})
    rep.print()
    return ok and rep.passed()


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    strict = os.environ.get("LOOM_LLAMA_PARITY_STRICT") == "1"
    tmp = tempfile.mkdtemp(prefix="loom_hf_llama_")
    try:
        with open(os.path.join(SRC, "data/corpus/kjv.jsonl")) as f, open(os.path.join(tmp, "c.jsonl"), "w") as g:
            for _ in range(20):
                g.write(f.readline())
        subprocess.run([LOOM, "preprocess", "--input", os.path.join(tmp, "c.jsonl"), "--output-prefix",
                        os.path.join(tmp, "c"), "--vocab-file", os.path.join(SRC, "data/gpt2/vocab.json"),
                        "--merge-file", os.path.join(SRC, "data/gpt2/merges.txt"), "--append-eod"], check=True,
                       stdout=subprocess.DEVNULL)
        results = {}

        def attempt(label, check, *a):
            try:
                results[label] = check(*a)
            except (subprocess.CalledProcessError, AssertionError) as e:  # a crash or a wrong layout
                print(f"{label}: {e}")
                results[label] = False
        for name, flags in EXPORTS.items():
            attempt("export " + name, check_export, name, flags, tmp, os.path.join(tmp, "c_text_document"))
        for name, extra in IMPORTS.items():
            attempt("import " + name, check_import, name, extra, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = False
    print()
    for name, ok in results.items():
        pending = name in PENDING and not strict
        status = "ok" if ok else ("FAIL (pending: needs the kernels branch)" if pending else "FAIL")
        if ok and name in PENDING:
            status += " (in PENDING but passes: remove it from PENDING)"
        print(f"{name:<24} {status}")
        failed |= not ok and not pending
    print("\nFAIL" if failed else "\nPASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
