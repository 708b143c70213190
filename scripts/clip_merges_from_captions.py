#!/usr/bin/python3
"""Learns a small CLIP-format BPE vocabulary (bpe_simple_vocab_16e6.txt.gz's format: a header line, then
one merge "a b" per line over byte-level characters, the last piece of a word ending in "</w>") from the
captions of image-text indexes, merging the most frequent pair until every caption word is one token.
For the demo and tests: CLIP's real vocabulary (49,408 tokens) is not bundled, and a caption set of a few
dozen words needs a few hundred tokens, which keeps the caption decoder's vocabulary projection small.

usage: clip_merges_from_captions.py OUT.txt.gz INDEX.jsonl [INDEX.jsonl ...]"""
import collections, gzip, json, re, sys


def main():
    out, indexes = sys.argv[1], sys.argv[2:]
    words = collections.Counter()
    for path in indexes:
        for line in open(path, encoding="utf-8"):
            if line.strip():
                for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", json.loads(line)["caption"].lower()):
                    words[w] += 1
    # Each word as characters, the last with </w> (CLIP's word end), as CLIP's bpe() splits it.
    split = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in words}
    merges = []
    while True:
        pairs = collections.Counter()
        for w, pieces in split.items():
            for a, b in zip(pieces, pieces[1:]):
                pairs[(a, b)] += words[w]
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        for w, pieces in split.items():
            merged, i = [], 0
            while i < len(pieces):
                if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == best:
                    merged.append(pieces[i] + pieces[i + 1])
                    i += 2
                else:
                    merged.append(pieces[i])
                    i += 1
            split[w] = tuple(merged)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.write("\"bpe_simple_vocab\" learned from captions by clip_merges_from_captions.py\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    print(f"{len(words)} words, {len(merges)} merges: vocabulary of {512 + len(merges) + 2} tokens -> {out}")


if __name__ == "__main__":
    main()
