#!/usr/bin/python3
"""Loom's GPT-2 BPE tokenizer vs the npm package gpt-3-encoder (OpenAI's encoder in JavaScript).

  1. the whole bundled corpus (data/corpus/kjv.jsonl): identical ids for every chapter;
  2. hostile text: emoji (ZWJ, flags, skin tones), CJK, combining marks, contractions, runs of
     spaces/newlines, unusual white space, long words, invalid UTF-8, and seeded random byte strings:
     identical ids, and decode() gives back the bytes (invalid UTF-8: the U+FFFD-repaired bytes,
     which is what the reference sees through the WHATWG decoder);
  3. pre-tokenisation of every Unicode code point in several contexts against the package's own
     regex (node's Unicode tables), and BPE ids on a sample of them.
The package is installed into $LOOM_BUILD_DIR/npm when missing (npm registry needed); if node or the
package cannot be had the test FAILS (it never skips). Needs $LOOM_BUILD_DIR/tests/data_probe.
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
from npm_reference import ensure_npm_package  # noqa: E402

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("LOOM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PROBE = os.path.join(BUILD, "tests", "data_probe")
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt3_encoder_ref.js")
VOCAB = os.path.join(SOURCE, "data/gpt2/vocab.json")
MERGES = os.path.join(SOURCE, "data/gpt2/merges.txt")
CORPUS = os.path.join(SOURCE, "data/corpus/kjv.jsonl")
PACKAGE = "gpt-3-encoder@1.1.4"
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


def ensure_package():
    """node_modules dir holding gpt-3-encoder, installing it into the build dir if needed."""
    return ensure_npm_package(BUILD, PACKAGE, os.path.join("gpt-3-encoder", "Encoder.js"))


def b64(b):
    return base64.b64encode(b).decode()


def hostile_samples():
    s = [
        "", " ", "  ", "\n", "\n\n\n", "   \n\n  \t\t x", "a  b   c    d", "word   ", "trailing\n", "\r\n\r\n",
        "tabs\tand\u000bvertical\u000cfeeds", "\u00a0nbsp\u2003em\u3000ideographic\u2028line\u2029para",
        "\ufeffBOM at start", "zero\u200bwidth\u200djoiner\u2060", "NEL\u0085here", "\x00\x01\x1f\x7f controls",
        "I'm you're we've they'll she'd it's don't", "'S 'LL 'D 'Re", "'s's''s 's ' 'll'", "isn't'll", "'", "''",
        "rock'n'roll 'quoted' \u2019curly\u2019 o'clock",
        "\U0001F600\U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 \U0001F1EF\U0001F1F5 \u2764\ufe0f",
        "\U0001F600\U0001F600\U0001F600\U0001F600 emoji\U0001F600runs",
        "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\uff0c\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
        "e\u0301 a\u0308 \u0915\u094d\u0937 Z\u0351\u0352\u0357 n\u0303o\u0303 \u1e9b\u0323",
        "\ufb01 ligature \u212b \u2126 \uff21\uff22\uff23 fullwidth",
        "123 4567 \u0663\u0664\u0665 \u00bd \u216b 1,000.00 3.14e-10 0x1F 2nd 3rd",
        "!!!??? ... --- *** ((( ))) $$$ @@@ ### %%% ^^^",
        "<|endoftext|>", "hello<|endoftext|>world", "<|endoftext|> <|endoftext|>",
        "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u0928\u092e\u0938\u094d\u0924\u0947",
        "\U00031350\U00031351 \U00011F04\U00011F05 \U0001E4D0 \U00016D40",  # letters newer than Unicode 14
        "\U0001D2C0\U0001D2C1 \U00011F50\U00011F51",  # numbers newer than Unicode 14
        "https://example.com/path?q=1&x=y#frag user@example.org",
        "def f(x):\n    return x**2  # comment\n\n\tif x: pass\n",
        "a" * 1000, "ab" * 500, "the" * 300, " " * 1000, "\n" * 500, " \n" * 300, "\u00e9" * 400,
        "".join(chr(0x61 + (i * 7) % 26) for i in range(3000)),
        # one long pre-token of random letters: the bucketed BPE pass of long words against the reference
        "".join(random.Random(7).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20000)),
        "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic",
    ]
    out = [x.encode("utf-8") for x in s]
    out += [
        b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xc1\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80", b"\xe2\x82", b"abc\xe2\x82", b"\xe2\x82abc", b"\x80\x80\x80", b"\xf0\x9f\x98x",
        b"\xf0\x9f\x98\x80\xf0\x9f", b"\xe0\x80\xaf", b"\xe0\x9f\xbf", b"\xc3\x28", b"\xc3", b" \xc3 \xa9 ",
        b"hello \xff world \xfe!", b"caf\xe9 na\xefve", b"\xe4\xb8\xad\xe6\x96", b"'\xffs 'l\x80l",
        b"\xef\xbb\xbf\xef\xbb", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",
    ]
    rng = random.Random(1234)
    fragments = [b"a", b"Z", b"the", b" ", b"  ", b"\n", b"\t", b"'", b"'s", b"'ll", b"0", b"42", b".", b",", b"!",
                 "\u00e9".encode(), "\u4e2d".encode(), "\U0001F600".encode(), "\u0301".encode(), "\u00a0".encode(),
                 "\u3000".encode(), b"\xff", b"\xc3", b"\x80", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f"]
    for _ in range(400):
        out.append(b"".join(rng.choice(fragments) for _ in range(rng.randint(0, 25))))
    for _ in range(100):
        out.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 30))))
    return out


def codepoint_chunks(step=1, per_chunk=64):
    cps = [c for c in range(0, 0x110000, step) if not 0xD800 <= c < 0xE000]
    chunks = []
    for i in range(0, len(cps), per_chunk):
        text = "".join(f"{chr(c)} {chr(c)}x{chr(c)}1{chr(c)}\u00e9{chr(c)}{chr(c)}'{chr(c)}  {chr(c)}\n{chr(c)}"
                       for c in cps[i:i + per_chunk])
        chunks.append(b64(text.encode("utf-8", "surrogatepass")))
    return chunks


def main():
    if not os.path.exists(PROBE):
        print(f"FAIL  {PROBE} is not built", flush=True)
        return 1
    try:
        modules = ensure_package()
    except Exception as e:  # noqa: BLE001 - any reason the reference is unavailable is a failure
        print(f"FAIL  reference tokenizer unavailable: {e}", flush=True)
        return 1
    version = json.load(open(os.path.join(modules, "gpt-3-encoder", "package.json")))["version"]
    print(f"reference: gpt-3-encoder {version}, node {run(['node', '--version']).strip()}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # 1. corpus
        ref_bin, loom_bin = os.path.join(tmp, "ref.bin"), os.path.join(tmp, "loom.bin")
        run(["node", HELPER, modules, "jsonl", CORPUS, "text", ref_bin])
        run([PROBE, "tokenize-jsonl", VOCAB, MERGES, CORPUS, "text", loom_bin])
        ref, got = np.fromfile(ref_bin, dtype=np.int32), np.fromfile(loom_bin, dtype=np.int32)
        if np.array_equal(ref, got):
            docs, p = 0, 0
            while p < len(ref):
                p += 1 + ref[p]
                docs += 1
            check(True, f"corpus: {docs} documents, {len(ref) - docs} tokens identical")
        else:
            first = int(np.argmax(ref[:min(len(ref), len(got))] != got[:min(len(ref), len(got))]))
            check(False, f"corpus: ids differ (first at int32 #{first} of the dump)")

        # 2. hostile text
        samples = hostile_samples()
        inp = os.path.join(tmp, "hostile.json")
        json.dump([b64(s) for s in samples], open(inp, "w"))
        run(["node", HELPER, modules, "b64", inp, inp + ".ref"])
        run([PROBE, "tokenize-b64", VOCAB, MERGES, inp, inp + ".loom"])
        ref = json.load(open(inp + ".ref"))
        got = json.load(open(inp + ".loom"))
        bad = [i for i in range(len(samples)) if ref[i] != got["ids"][i]]
        check(not bad, f"hostile text: {len(samples)} samples, identical ids" +
              ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:3]]}"))
        repaired = [s.decode("utf-8", "replace").encode("utf-8") for s in samples]
        decoded = [base64.b64decode(d) for d in got["decoded"]]
        bad = [i for i in range(len(samples)) if decoded[i] != repaired[i]]
        check(not bad, "hostile text: decode(encode(x)) == x (U+FFFD-repaired where x is not UTF-8)" +
              ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:3]]}"))
        invalid = sum(1 for s in samples if s != s.decode("utf-8", "replace").encode("utf-8"))
        check(invalid >= 100, f"hostile text: {invalid} of the samples are invalid UTF-8")

        # 3. every code point through the pre-tokenizer; a sample through BPE
        inp = os.path.join(tmp, "cps.json")
        json.dump(codepoint_chunks(), open(inp, "w"))
        run(["node", HELPER, modules, "split", inp, inp + ".ref"])
        run([PROBE, "split-b64", VOCAB, MERGES, inp, inp + ".loom"])
        ref, got = np.fromfile(inp + ".ref", dtype=np.int32), np.fromfile(inp + ".loom", dtype=np.int32)
        same = np.array_equal(ref, got)
        where = "" if same else f" (first difference at int32 #{int(np.argmax(ref[:len(got)] != got[:len(ref)]))})"
        check(same, f"pre-tokenisation: all {0x110000 - 0x800} code points in 11 contexts split identically" + where)
        inp = os.path.join(tmp, "cps_bpe.json")
        json.dump(codepoint_chunks(step=89, per_chunk=16), open(inp, "w"))
        run(["node", HELPER, modules, "b64", inp, inp + ".ref"])
        run([PROBE, "tokenize-b64", VOCAB, MERGES, inp, inp + ".loom"])
        ref, got = json.load(open(inp + ".ref")), json.load(open(inp + ".loom"))["ids"]
        check(ref == got, f"BPE: every 89th code point in 11 contexts ({len(ref)} samples), identical ids")

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", flush=True)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
