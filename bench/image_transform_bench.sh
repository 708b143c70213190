#!/usr/bin/env bash
# Image pipeline throughput on one thread: decode of a 500x375 JPEG (quality 90, 4:2:0) from memory plus
# EVA-CLIP's training transform (RandomResizedCrop to 224, bicubic, ToTensor, Normalize), Loom
# (tests/image_transform_driver bench) against PIL + torchvision on the same file, in the same run.
# Reported per thread by CPU time (which other load on a shared machine hardly disturbs) and by wall clock.
#
#   bash bench/image_transform_bench.sh [build dir]      (default: build; SECONDS_PER_RUN, default 3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
DRIVER=$BUILD/tests/image_transform_driver
SECS=${SECONDS_PER_RUN:-3}
[ -x "$DRIVER" ] || { echo "error: $DRIVER is not built" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$ROOT" "$TMP/bench.jpg" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/parity")
from test_image_transform import scene
from PIL import Image
Image.fromarray(scene(500, 375, 1)).save(sys.argv[2], quality=90)
PY
echo "loom: $("$DRIVER" bench "$TMP/bench.jpg" 224 "$SECS")"
/usr/bin/python3 - "$TMP/bench.jpg" "$SECS" <<'PY'
import io, sys, time
import torch
import torchvision.transforms as T
from PIL import Image
torch.set_num_threads(1)
t = T.Compose([T.RandomResizedCrop(224, scale=(0.9, 1.0), interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(),
               T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
data = open(sys.argv[1], "rb").read()
n, wall, cpu = 0, time.time(), time.thread_time()
while time.time() - wall < float(sys.argv[2]):
    t(Image.open(io.BytesIO(data)).convert("RGB"))
    n += 1
print("PIL + torchvision: %.1f images/s per thread by CPU time, %.1f images/s by wall clock, %d images"
      % (n / (time.thread_time() - cpu), n / (time.time() - wall), n))
PY
