#!/usr/bin/env bash
# `loom make-images`: the synthetic image-caption set. Same seed -> same bytes (on 1 and 2 threads),
# the asked-for counts, valid JSON lines whose captions follow the grammar and name the colours actually
# drawn (pixel colours counted by PIL), JPEGs that PIL decodes to the asked-for size and that Loom's
# decoder reads identically, classes.json; refusal of non-empty outputs unless --overwrite (and never of a
# directory that make-images did not write); one `loom: error:` line and exit 2 for every bad flag.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DRIVER=${LOOM_BUILD_DIR:-}/tests/image_transform_driver

# --- determinism, counts ---------------------------------------------------------------------------
run env OMP_NUM_THREADS=1 "$LOOM" make-images --output "$TMP/a" --num-train 40 --num-val 10 --image-size 48 --seed 3
[ "$CODE" -eq 0 ] || fail "make-images failed"
expect_line "wrote 40 train and 10 val images (48x48 JPEG, quality 90, 12 classes) to $TMP/a in $(echo "$OUT" | sed -n 's/.* in \([0-9.]*\) s$/\1/p') s"
run env OMP_NUM_THREADS=2 "$LOOM" make-images --output "$TMP/nested/b/" --num-train 40 --num-val 10 --image-size 48 --seed 3
[ "$CODE" -eq 0 ] || fail "make-images into a new nested directory failed"
diff -r "$TMP/a" "$TMP/nested/b" >/dev/null || fail "same seed, 1 vs 2 threads: the sets differ"
run "$LOOM" make-images --output "$TMP/c" --num-train 40 --num-val 10 --image-size 48 --seed 4
cmp -s "$TMP/a/train_000000.jpg" "$TMP/c/train_000000.jpg" && cmp -s "$TMP/a/train.jsonl" "$TMP/c/train.jsonl" \
  && fail "another seed gave the same set"
[ "$(ls "$TMP/a" | wc -l)" -eq 53 ] || fail "expected 50 JPEGs + train.jsonl + val.jsonl + classes.json, got $(ls "$TMP/a" | wc -l) files"
[ "$(ls "$TMP" | grep -c 'tmp-\|old-' || true)" -eq 0 ] || fail "a temporary directory was left behind: $(ls "$TMP")"
[ "$(ls "$TMP/nested")" = "b" ] || fail "temporary directory left in $TMP/nested"

# --- content: JSON, captions, colours, decode round trip ---------------------------------------------
run "$PY" - "$TMP/a" "$DRIVER" <<'PYEOF'
import json, os, re, subprocess, sys
import numpy as np
from PIL import Image
d, driver = sys.argv[1], sys.argv[2]
bad = []
classes = json.load(open(os.path.join(d, "classes.json")))
names = classes["classes"]
if len(names) != 12 or len(set(names)) != 12 or not all("{}" in t for t in classes["templates"]):
    bad.append(f"classes.json: {classes}")
colours = {"red": (220, 45, 45), "green": (50, 175, 70), "blue": (50, 90, 225), "yellow": (235, 205, 40)}
group = r"(a|two|three) (red|green|blue|yellow) (square|circle|triangle)s?"
grammar = re.compile(rf"^{group}( (left of|right of|above|below) {group})?$")
for split, n in [("train", 40), ("val", 10)]:
    lines = open(os.path.join(d, split + ".jsonl")).read().splitlines()
    if len(lines) != n:
        bad.append(f"{split}.jsonl has {len(lines)} lines, expected {n}")
    for i, line in enumerate(lines):
        j = json.loads(line)
        if list(j) != ["image", "caption", "label"] or j["image"] != f"{split}_{i:06d}.jpg":
            bad.append(f"{split} line {i}: keys/path {j}")
            continue
        cap, m = j["caption"], grammar.match(j["caption"])
        if not m:
            bad.append(f"{split} line {i}: caption {cap!r} outside the grammar")
            continue
        plural_ok = all((c == "a") == (not w.endswith("s")) for c, w in re.findall(r"\b(a|two|three) \w+ (\w+)", cap))
        if not plural_ok or j["label"] != f"{m.group(2)} {m.group(3)}" or j["label"] not in names:
            bad.append(f"{split} line {i}: label {j['label']!r} / plural for {cap!r}")
        path = os.path.join(d, j["image"])
        im = Image.open(path)
        if im.format != "JPEG" or im.size != (48, 48) or im.mode != "RGB":
            bad.append(f"{path}: {im.format} {im.size} {im.mode}")
        px = np.asarray(im.convert("RGB")).astype(int).reshape(-1, 3)
        named = set(re.findall(r"red|green|blue|yellow", cap))
        for cname, rgb in colours.items():
            share = (np.abs(px - np.array(rgb)).max(axis=1) < 40).mean()
            if (cname in named) != (share > 0.003):
                bad.append(f"{path}: caption {cap!r} but {share:.3f} of the pixels are {cname}")
        if os.path.exists(driver):
            raw = os.path.join(d, "..", "decoded.raw")
            subprocess.run([driver, "decode", path, raw], check=True)
            r = np.fromfile(raw, np.uint8)
            if not np.array_equal(r[8:].reshape(48, 48, 3), np.asarray(im.convert("RGB"))):
                bad.append(f"{path}: Loom's decode differs from PIL's")
print("\n".join(bad) if bad else "content ok")
PYEOF
[ "$CODE" -eq 0 ] && [ "$OUT" = "content ok" ] || fail "set content: $OUT $ERR"

# --- existing outputs ------------------------------------------------------------------------------
mkdir -p "$TMP/empty"
run "$LOOM" make-images --output "$TMP/empty" --num-train 3 --num-val 1 --image-size 32
[ "$CODE" -eq 0 ] && [ -f "$TMP/empty/train_000002.jpg" ] || fail "an existing empty directory should be used"
expect_error "--output $TMP/a is not empty (--overwrite replaces a set written by loom make-images)" \
  "$LOOM" make-images --output "$TMP/a" --num-train 3 --num-val 1
[ "$(ls "$TMP/a" | wc -l)" -eq 53 ] || fail "a refused run touched the existing set"
run "$LOOM" make-images --output "$TMP/a" --num-train 3 --num-val 1 --image-size 32 --overwrite
[ "$CODE" -eq 0 ] && [ "$(ls "$TMP/a" | wc -l)" -eq 7 ] || fail "--overwrite should replace the set: $(ls "$TMP/a" | wc -l) files"
mkdir -p "$TMP/mine" && echo keep >"$TMP/mine/notes.txt"
expect_error "holds no classes.json: not a set written by loom make-images" \
  "$LOOM" make-images --output "$TMP/mine" --overwrite
[ "$(cat "$TMP/mine/notes.txt")" = keep ] || fail "a foreign directory was touched"

# --- bad flags -------------------------------------------------------------------------------------
echo x >"$TMP/file"
expect_error "the following arguments are required: --output" "$LOOM" make-images --num-train 3
expect_error "--num-train must be at least 1 (got 0)" "$LOOM" make-images --output "$TMP/x" --num-train 0
expect_error "--num-val must not be negative (got -1)" "$LOOM" make-images --output "$TMP/x" --num-val -1
expect_error "--image-size must be in 32..4096 (got 16)" "$LOOM" make-images --output "$TMP/x" --image-size 16
expect_error "--image-size" "$LOOM" make-images --output "$TMP/x" --image-size big
expect_error "--jpeg-quality must be in 1..100 (got 101)" "$LOOM" make-images --output "$TMP/x" --jpeg-quality 101
expect_error "--seed must not be negative" "$LOOM" make-images --output "$TMP/x" --seed -5
expect_error "--no-such-flag" "$LOOM" make-images --output "$TMP/x" --no-such-flag
expect_error "--output $TMP/file: $TMP/file exists and is not a directory" "$LOOM" make-images --output "$TMP/file"
expect_error "--output $TMP/file/sub: $TMP/file is not a directory" "$LOOM" make-images --output "$TMP/file/sub"
[ ! -e "$TMP/x" ] || fail "a refused run created its output"

# --- help ------------------------------------------------------------------------------------------
run "$LOOM" --help
grep -q "^  make-images " <<<"$OUT" || fail "loom --help does not list make-images"
run "$LOOM" make-images --help
[ "$CODE" -eq 0 ] && grep -q -- "--num-train" <<<"$OUT" || fail "make-images --help"
finish
