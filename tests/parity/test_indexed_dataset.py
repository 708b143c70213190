#!/usr/bin/python3
"""Parity of Loom's data pipeline with Megatron-LM's formats and sample construction.

  1. `loom preprocess` output read by a numpy reader written from Megatron's documented MMIDIDX
     layout (header, sizes, pointers, document index, tokens), with the ids checked against the
     tokenizer (multi-key input, empty documents, --append-eod, 1 and 2 workers byte-identical).
  2. Files written in Megatron's layout by a Python writer (uint16 and int32, empty sequences,
     multi-sequence documents) read back by Loom.
  3. GPT samples: a straightforward Python/numpy implementation of Megatron's legacy
     _build_index_mappings (Megatron-LM 68797d9, 2021-08: split, epochs, separate last epoch,
     doc_idx with RandomState.shuffle, sample_idx, shuffle_idx) and of BlendableDataset /
     build_blending_indices, compared with Loom's cached .npy files and samples; the build log
     lines; cache reuse, .npy files written by numpy reused, stale caches rebuilt.
Needs $LOOM_BUILD_DIR (loom and tests/data_probe built). Exits non-zero on failure.
"""

import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

BUILD = os.environ.get("LOOM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("LOOM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
LOOM = os.path.join(BUILD, "loom")
PROBE = os.path.join(BUILD, "tests", "data_probe")
VOCAB = os.path.join(SOURCE, "data/gpt2/vocab.json")
MERGES = os.path.join(SOURCE, "data/gpt2/merges.txt")
CORPUS = os.path.join(SOURCE, "data/corpus/kjv.jsonl")
FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


# ---------------------------------------------------------------------------------------------
# Megatron's MMIDIDX layout (megatron/data/indexed_dataset.py, MMapIndexedDataset.Index)

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.double, 8: np.uint16}
CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


def read_megatron(prefix):
    idx = open(prefix + ".idx", "rb").read()
    assert idx[:9] == b"MMIDIDX\x00\x00", "magic"
    (version,) = struct.unpack("<Q", idx[9:17])
    (code,) = struct.unpack("<B", idx[17:18])
    n, d = struct.unpack("<QQ", idx[18:34])
    off = 34
    sizes = np.frombuffer(idx, dtype=np.int32, count=n, offset=off)
    pointers = np.frombuffer(idx, dtype=np.int64, count=n, offset=off + sizes.nbytes)
    doc_idx = np.frombuffer(idx, dtype=np.int64, count=d, offset=off + sizes.nbytes + pointers.nbytes)
    assert len(idx) == off + sizes.nbytes + pointers.nbytes + doc_idx.nbytes, "idx length"
    dtype = DTYPES[code]
    binary = np.memmap(prefix + ".bin", mode="r", dtype=np.uint8)
    item = np.dtype(dtype).itemsize
    seqs = [np.frombuffer(binary, dtype=dtype, count=int(s), offset=int(p)) for s, p in zip(sizes, pointers)]
    return dict(version=version, code=code, sizes=sizes, pointers=pointers, doc_idx=doc_idx, seqs=seqs,
                bin_bytes=len(binary), item=item)


def write_megatron(prefix, seqs, dtype, doc_idx=None):
    """MMapIndexedDatasetBuilder: add_item per sequence, end_document per document, finalize."""
    dtype = np.dtype(dtype)
    with open(prefix + ".bin", "wb") as f:
        for s in seqs:
            f.write(np.array(s, dtype=dtype).tobytes(order="C"))
    sizes = [len(s) for s in seqs]
    if doc_idx is None:
        doc_idx = list(range(len(seqs) + 1))
    pointers, address = [], 0
    for s in sizes:
        pointers.append(address)
        address += s * dtype.itemsize
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00")
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", CODES[dtype]))
        f.write(struct.pack("<Q", len(sizes)))
        f.write(struct.pack("<Q", len(doc_idx)))
        f.write(np.array(sizes, dtype=np.int32).tobytes(order="C"))
        f.write(np.array(pointers, dtype=np.int64).tobytes(order="C"))
        f.write(np.array(doc_idx, dtype=np.int64).tobytes(order="C"))


# ---------------------------------------------------------------------------------------------
# Megatron's legacy GPT dataset, written out plainly (gpt_dataset.py + helpers.cpp, 2021)


def split_boundaries(splits_string, size):
    if "," in splits_string:
        splits = [float(s) for s in splits_string.split(",")]
    elif "/" in splits_string:
        splits = [float(s) for s in splits_string.split("/")]
    else:
        splits = [float(splits_string)]
    splits = (splits + [0.0, 0.0])[:3]
    total = sum(splits)
    splits = [s / total for s in splits]
    index = [0]
    for s in splits:
        index.append(index[-1] + int(round(s * float(size))))
    diff = index[-1] - size
    return [index[0]] + [i - diff for i in index[1:]]


def epochs_needed(tokens_per_epoch, seq_length, num_samples):
    epochs, total = 0, 0
    while True:
        epochs += 1
        total += tokens_per_epoch
        if (total - 1) // seq_length >= num_samples:
            return epochs


def make_doc_idx(documents, epochs, rng, separate_last):
    if not separate_last or epochs == 1:
        doc_idx = np.tile(np.array(documents, dtype=np.int32), epochs)
        rng.shuffle(doc_idx)
        return doc_idx
    first = make_doc_idx(documents, epochs - 1, rng, False)
    last = make_doc_idx(documents, 1, rng, False)
    return np.concatenate((first, last))


def make_sample_idx(sizes, doc_idx, seq_length, epochs, tokens_per_epoch):
    num_samples = (epochs * tokens_per_epoch - 1) // seq_length
    out = np.zeros((num_samples + 1, 2), dtype=np.int32)
    pos, offset = 0, 0
    for i in range(1, num_samples + 1):
        need = seq_length + 1  # tokens still missing from this sample (the last one is shared)
        while True:
            available = int(sizes[doc_idx[pos]]) - offset
            if available >= need:
                offset += need - 1
                break
            need -= available
            pos += 1
            offset = 0
        out[i] = (pos, offset)
    return out


def index_mappings(documents, sizes, num_samples, seq_length, seed):
    tokens_per_epoch = int(np.sum(sizes[documents]))
    epochs = epochs_needed(tokens_per_epoch, seq_length, num_samples)
    rng = np.random.RandomState(seed=seed)
    separate = False
    if epochs > 1:
        from_minus_one = ((epochs - 1) * tokens_per_epoch - 1) // seq_length
        last = num_samples - from_minus_one
        per_epoch = (tokens_per_epoch - 1) // seq_length
        separate = last < int(0.80 * per_epoch)
    doc_idx = make_doc_idx(documents, epochs, rng, separate)
    sample_idx = make_sample_idx(sizes, doc_idx, seq_length, epochs, tokens_per_epoch)
    total = sample_idx.shape[0] - 1
    first = from_minus_one if separate else total
    dtype = np.uint32 if total < np.iinfo(np.uint32).max - 1 else np.int64
    shuffle_first = np.arange(0, first, dtype=dtype)
    rng.shuffle(shuffle_first)
    if first == total:
        shuffle_idx = shuffle_first
    else:
        shuffle_last = np.arange(first, total, dtype=dtype)
        rng.shuffle(shuffle_last)
        shuffle_idx = np.concatenate((shuffle_first, shuffle_last))
    return doc_idx, sample_idx, shuffle_idx, epochs, separate


def get_sample(seqs, doc_idx, sample_idx, shuffle_idx, i):
    i = shuffle_idx[i]
    (df, of), (dl, ol) = sample_idx[i], sample_idx[i + 1]
    if df == dl:
        return np.asarray(seqs[doc_idx[df]][of:ol + 1])
    parts = [seqs[doc_idx[df]][of:]] + [seqs[doc_idx[k]] for k in range(df + 1, dl)] + [seqs[doc_idx[dl]][:ol + 1]]
    return np.concatenate(parts)


def blending_indices(weights, size):
    weights = np.array(weights, dtype=np.float64)
    weights /= np.sum(weights)
    current = [0] * len(weights)
    dataset_index, sample_index = np.zeros(size, np.uint8), np.zeros(size, np.int64)
    for s in range(size):
        x = max(float(s), 1.0)
        errors = [weights[d] * x - current[d] for d in range(len(weights))]
        best = 0
        for d in range(1, len(weights)):
            if errors[d] > errors[best]:
                best = d
        dataset_index[s], sample_index[s] = best, current[best]
        current[best] += 1
    return dataset_index, sample_index


class RefGpt:
    """Reference train/valid/test datasets of one prefix."""

    def __init__(self, seqs, split, samples, seq_length, seed):
        sizes = np.array([len(s) for s in seqs], dtype=np.int32)
        self.bounds = split_boundaries(split, len(seqs))
        self.seqs = seqs
        self.splits = {}
        for k, name in enumerate(["train", "valid", "test"]):
            b, e = self.bounds[k], self.bounds[k + 1]
            if e > b and samples[k] > 0:
                docs = np.arange(b, e, dtype=np.int32)
                self.splits[name] = index_mappings(docs, sizes, samples[k], seq_length, seed)

    def size(self, name):
        return self.splits[name][1].shape[0] - 1

    def sample(self, name, i):
        d, s, sh = self.splits[name][:3]
        return get_sample(self.seqs, d, s, sh, i)


# ---------------------------------------------------------------------------------------------


def probe_build(tmp, tag, cfg):
    cfg_path = os.path.join(tmp, f"{tag}.json")
    out_path = os.path.join(tmp, f"{tag}.out.json")
    json.dump(cfg, open(cfg_path, "w"))
    log = run([PROBE, "gpt-build", cfg_path, out_path])
    return json.load(open(out_path)), log


def map_files(cache_prefix, name, n, seq, seed):
    base = f"{cache_prefix}_{name}_indexmap_{n}ns_{seq}sl_{seed}s"
    return [base + s for s in ("_doc_idx.npy", "_sample_idx.npy", "_shuffle_idx.npy")]


def compare_split(tag, ref, name, out, cache_prefix, n, seq, seed, indices=None):
    if name not in ref.splits:
        check(out[name] is None, f"{tag} {name}: no dataset, as Megatron")
        return
    d, s, sh, epochs, _ = ref.splits[name]
    files = map_files(cache_prefix, name, n, seq, seed)
    ld, ls, lsh = (np.load(f) for f in files)
    check(ld.dtype == np.int32 and np.array_equal(ld, d), f"{tag} {name}: doc_idx ({len(d)} entries, {epochs} epochs)")
    check(ls.dtype == np.int32 and ls.shape == s.shape and np.array_equal(ls, s), f"{tag} {name}: sample_idx {s.shape}")
    check(lsh.dtype == sh.dtype and np.array_equal(lsh, sh), f"{tag} {name}: shuffle_idx ({sh.dtype})")
    check(out[name]["size"] == ref.size(name), f"{tag} {name}: size {ref.size(name)}")
    got = out[name]["samples"]
    which = range(ref.size(name)) if indices is None else [i for i in indices if i < ref.size(name)]
    bad = [i for i in which if not np.array_equal(np.array(got[str(i)]), ref.sample(name, i))]
    check(not bad, f"{tag} {name}: {len(list(which))} samples equal" + (f" (first bad {bad[:5]})" if bad else ""))


def test_preprocess_layout(tmp):
    # Multi-key input with empty documents; --append-eod.
    src = os.path.join(tmp, "multi.jsonl")
    rows = [{"text": "Hello world", "title": "A"}, {"text": "", "title": "Empty text"},
            {"text": " ", "title": ""}, {"text": "caf\u00e9 \U0001F600 \u4e2d\u6587", "title": "B", "extra": 1},
            {"text": "last", "title": "C"}]
    with open(src, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    prefix = os.path.join(tmp, "multi")
    run([LOOM, "preprocess", "--input", src, "--output-prefix", prefix, "--json-keys", "text", "title",
         "--vocab-file", VOCAB, "--merge-file", MERGES, "--append-eod"])
    texts = [r[k] for k in ("text", "title") for r in rows]
    samples = os.path.join(tmp, "multi.b64.json")
    import base64
    json.dump([base64.b64encode(t.encode()).decode() for t in texts], open(samples, "w"))
    run([PROBE, "tokenize-b64", VOCAB, MERGES, samples, samples + ".out"])
    ids = json.load(open(samples + ".out"))["ids"]
    for k, key in enumerate(("text", "title")):
        expect = [i + [50256] for i in ids[k * len(rows):(k + 1) * len(rows)] if i]  # empty -> no document
        m = read_megatron(f"{prefix}_{key}_document")
        check(m["version"] == 1 and m["code"] == 8, f"preprocess {key}: header version 1, dtype uint16 (code 8)")
        check([list(map(int, s)) for s in m["seqs"]] == expect, f"preprocess {key}: {len(expect)} documents, ids + EOD")
        check(list(m["doc_idx"]) == list(range(len(expect) + 1)), f"preprocess {key}: document index 0..N")
        check(list(m["pointers"]) == list(np.cumsum([0] + [2 * len(e) for e in expect])[:-1]),
              f"preprocess {key}: pointers")
        check(m["bin_bytes"] == 2 * sum(map(len, expect)), f"preprocess {key}: .bin length")

    # The whole corpus, 1 and 2 workers.
    out1, out2 = os.path.join(tmp, "kjv1"), os.path.join(tmp, "kjv2")
    for out, w in ((out1, "1"), (out2, "2")):
        run([LOOM, "preprocess", "--input", CORPUS, "--output-prefix", out, "--vocab-file", VOCAB,
             "--merge-file", MERGES, "--append-eod", "--workers", w])
    same = all(open(f"{out1}_text_document.{e}", "rb").read() == open(f"{out2}_text_document.{e}", "rb").read()
               for e in ("bin", "idx"))
    check(same, "preprocess corpus: --workers 1 and 2 write identical files")
    ids_file = os.path.join(tmp, "kjv.ids")
    run([PROBE, "tokenize-jsonl", VOCAB, MERGES, CORPUS, "text", ids_file])
    raw = np.fromfile(ids_file, dtype=np.int32)
    expect, p = [], 0
    while p < len(raw):
        n = raw[p]
        expect.append(np.append(raw[p + 1:p + 1 + n], 50256))
        p += 1 + n
    m = read_megatron(f"{out1}_text_document")
    ok = len(m["seqs"]) == len(expect) and all(np.array_equal(a, b) for a, b in zip(m["seqs"], expect))
    check(ok, f"preprocess corpus: numpy reader sees {len(expect)} documents equal to the tokenizer's ids + EOD")
    check(list(m["doc_idx"]) == list(range(len(expect) + 1)), "preprocess corpus: document index")
    return f"{out1}_text_document", m["seqs"]


def test_python_writer(tmp):
    rng = np.random.RandomState(7)
    cases = {
        "u16": (np.uint16, [rng.randint(0, 50257, size=rng.randint(0, 20)).tolist() for _ in range(30)], None),
        "i32": (np.int32, [rng.randint(0, 2**31 - 1, size=rng.randint(0, 9)).tolist() for _ in range(12)],
                [0, 3, 3, 7, 12]),
        "empty": (np.uint16, [], [0]),
    }
    for name, (dtype, seqs, doc_idx) in cases.items():
        prefix = os.path.join(tmp, "py_" + name)
        write_megatron(prefix, seqs, dtype, doc_idx)
        out = os.path.join(tmp, name + ".read.json")
        run([PROBE, "read-indexed", prefix, out])
        got = json.load(open(out))
        want_doc = doc_idx if doc_idx is not None else list(range(len(seqs) + 1))
        check(got["tokens"] == seqs and got["doc_idx"] == want_doc and got["dtype"] == CODES[np.dtype(dtype)],
              f"python-written {name} ({len(seqs)} sequences): Loom reads tokens, doc index, dtype")


def test_gpt_samples(tmp, kjv_prefix, kjv_seqs):
    # A: the corpus, the reference log's settings (multi-epoch; valid/test use a separate last epoch).
    cache = os.path.join(tmp, "cacheA")
    cfg = dict(data_path=[kjv_prefix], split="800,100,100", seq_length=1024, seed=1234, train_samples=64000,
               valid_samples=1280, test_samples=640, cache_dir=cache, dump=list(range(0, 64000, 211)) + [63999])
    out, log = probe_build(tmp, "A", cfg)
    ref = RefGpt(kjv_seqs, cfg["split"], [64000, 1280, 640], 1024, 1234)
    cp = os.path.join(cache, os.path.basename(kjv_prefix))
    for name, n in (("train", 64000), ("valid", 1280), ("test", 640)):
        compare_split("A", ref, name, out, cp, n, 1024, 1234, indices=cfg["dump"])
    check(ref.splits["valid"][4] and not ref.splits["train"][4], "A: covers both separate_last_epoch cases")
    expect_lines = [
        "> building train, validation, and test datasets ...",
        " > datasets target sizes (minimum size):", "    train:      64000", "    validation: 1280",
        "    test:       640", "> building train, validation, and test datasets for GPT ...",
        " > building dataset index ...", "    reading sizes...", "    reading pointers...",
        "    reading document index...", "    creating numpy buffer of mmap...",
        "    creating memory view of numpy buffer...", " > finished creating indexed dataset in T seconds",
        f"    number of documents: {len(kjv_seqs)}", " > dataset split:", "    train:",
        f"     document indices in [0, {ref.bounds[1]}) total of {ref.bounds[1]} documents", "    validation:",
        f"     document indices in [{ref.bounds[1]}, {ref.bounds[2]}) total of {ref.bounds[2] - ref.bounds[1]} documents",
        "    test:",
        f"     document indices in [{ref.bounds[2]}, {ref.bounds[3]}) total of {ref.bounds[3] - ref.bounds[2]} documents"]
    lines = [re.sub(r"in \d+\.\d+ seconds", "in T seconds", l) for l in log.splitlines()]
    check(lines[:len(expect_lines)] == expect_lines, "A: Megatron's build log lines (header and split)")
    check(" > WARNING: could not find index map files, building the indices on rank 0 ..." in lines,
          "A: first run builds the index maps")
    tail = [l for l in lines if l.startswith("    total number of")]
    want_tail = []
    for name in ("train", "valid", "test"):
        want_tail += [f"    total number of samples: {ref.size(name) + 1}",
                      f"    total number of epochs: {ref.splits[name][3]}"]
    check(tail == want_tail, "A: total number of samples/epochs lines")
    check(lines[-1] == "> finished creating GPT datasets ...", "A: last log line")

    # Cache reuse: nothing rebuilt, files untouched.
    files = [f for f in os.listdir(cache)]
    mtimes = {f: os.stat(os.path.join(cache, f)).st_mtime_ns for f in files}
    out2, log2 = probe_build(tmp, "A2", dict(cfg, dump=[0, 1, 2]))
    check("WARNING" not in log2 and all(os.stat(os.path.join(cache, f)).st_mtime_ns == mtimes[f] for f in files),
          "A: second run loads the cached index maps without rebuilding")
    check(all(out2["train"]["samples"][k] == out["train"]["samples"][k] for k in ("0",)), "A: same samples from cache")
    # A stale cache (wrong shape) is rebuilt.
    victim = map_files(cp, "valid", 1280, 1024, 1234)[1]
    np.save(victim, np.zeros((5, 2), dtype=np.int32))
    out3, log3 = probe_build(tmp, "A3", dict(cfg, dump=list(range(1280))))
    check("do not match the dataset" in log3, "A: a stale cache file is detected and rebuilt")
    compare_split("A3", ref, "valid", out3, cp, 1280, 1024, 1234, indices=list(range(1280)))
    # A cache whose sample-idx keeps its shape, bounds and order but moves one sample's start by a token
    # (fuzz_npy: such maps were loaded and ended training with an internal error at that sample).
    victim = map_files(cp, "valid", 1280, 1024, 1234)[1]
    rows = np.load(victim)
    i = next(i for i in range(1, len(rows)) if rows[i][1] >= 1)
    rows[i][1] -= 1
    np.save(victim, rows)
    out4, log4 = probe_build(tmp, "A4", dict(cfg, dump=list(range(1280))))
    check("do not match the dataset (sample %d of sample-idx has 1024 tokens, expected 1025)" % (i - 1) in log4,
          "A: a cached sample of the wrong length is detected and rebuilt")
    compare_split("A4", ref, "valid", out4, cp, 1280, 1024, 1234, indices=list(range(1280)))

    # B: a Python-written dataset with empty documents, int32 ids, '/' split, tiny sequences; Loom must
    # also reuse index maps that numpy wrote (what Megatron leaves next to its data).
    rng = np.random.RandomState(3)
    seqs = [rng.randint(0, 2**31 - 1, size=int(rng.choice([0, 0, 1, 2, 5, 17, 40]))).tolist() for _ in range(60)]
    prefix = os.path.join(tmp, "syn")
    write_megatron(prefix, seqs, np.int32)
    arrays = [np.array(s, dtype=np.int32) for s in seqs]
    refB = RefGpt(arrays, "90/6/4", [700, 31, 0], 7, 99)
    cacheB = os.path.join(tmp, "cacheB")
    os.makedirs(cacheB)
    d, s, sh = refB.splits["valid"][:3]
    for f, a in zip(map_files(os.path.join(cacheB, "syn"), "valid", 31, 7, 99), (d, s, sh)):
        np.save(f, a, allow_pickle=True)
    outB, logB = probe_build(tmp, "B", dict(data_path=[prefix], split="90/6/4", seq_length=7, seed=99,
                                            train_samples=700, valid_samples=31, test_samples=0, cache_dir=cacheB))
    for name, n in (("train", 700), ("valid", 31), ("test", 0)):
        compare_split("B", refB, name, outB, os.path.join(cacheB, "syn"), n, 7, 99)
    check(logB.count("could not find index map files") == 1, "B: numpy-written valid index maps reused, train built")

    # C: blending three datasets, Megatron's --data-path 0.2 a 0.5 b 0.3 c.
    parts, prefixes = [], []
    for k in range(3):
        r = np.random.RandomState(10 + k)
        ss = [r.randint(0, 50000, size=int(r.randint(1, 30))).tolist() for _ in range(40 + 10 * k)]
        p = os.path.join(tmp, f"blend{k}")
        write_megatron(p, ss, np.uint16)
        parts.append([np.array(x, dtype=np.uint16) for x in ss])
        prefixes.append(p)
    weights = [0.2, 0.5, 0.3]
    targets = [900, 60, 30]
    total = sum(weights)
    norm = [w / total for w in weights]
    per = [[int(math.ceil(t * w * 1.005)) for t in targets] for w in norm]
    refs = [RefGpt(parts[k], "969, 30, 1", per[k], 16, 5) for k in range(3)]
    data_path = []
    for w, p in zip(weights, prefixes):
        data_path += [str(w), p]
    cacheC = os.path.join(tmp, "cacheC")
    outC, logC = probe_build(tmp, "C", dict(data_path=data_path, split="969, 30, 1", seq_length=16, seed=5,
                                            train_samples=targets[0], valid_samples=targets[1],
                                            test_samples=targets[2], cache_dir=cacheC,
                                            dump=list(range(targets[0]))))
    for si, name in enumerate(("train", "valid", "test")):
        have = [r for r in refs if name in r.splits]
        if len(have) != 3:
            check(outC[name] is None, f"C {name}: not built (a dataset has no documents in it)")
            continue
        size = sum(r.size(name) for r in refs)
        di, ds = blending_indices(norm, size)
        check(outC[name]["size"] == size, f"C {name}: blended size {size} = sum of parts")
        n = min(targets[si], size)
        bad = [i for i in range(n) if str(i) in outC[name]["samples"] and
               not np.array_equal(np.array(outC[name]["samples"][str(i)]), refs[di[i]].sample(name, int(ds[i])))]
        present = sum(1 for i in range(n) if str(i) in outC[name]["samples"])
        check(not bad and present == n, f"C {name}: {n} blended samples equal" + (f" (bad {bad[:5]})" if bad else ""))
    check("> building indices for blendable datasets ..." in logC and " > sample ratios:" in logC,
          "C: blending log lines")


def main():
    for exe in (LOOM, PROBE):
        if not os.path.exists(exe):
            print(f"FAIL  {exe} is not built", flush=True)
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        kjv_prefix, kjv_seqs = test_preprocess_layout(tmp)
        test_python_writer(tmp)
        test_gpt_samples(tmp, kjv_prefix, kjv_seqs)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", flush=True)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
