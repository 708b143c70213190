#!/usr/bin/env bash
# Checkpoint save/load throughput against the disk's sequential write rate (dd, in the same run), and the
# share of save time an asynchronous save hides from training. Usage: bench/checkpoint_bench.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/loom_ckpt_bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
dd_out=$(dd if=/dev/zero of="$DIR/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)
rm -f "$DIR/dd"
dd_mb_s=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[GM]B\/s$/) { v = $(i-1); if ($i == "GB/s") v *= 1024; print v } }' <<<"$dd_out")
res=$(OMP_NUM_THREADS=2 "$BUILD/bench/checkpoint_bench" "$DIR/ckpt")
echo "dd sequential write: $dd_mb_s MB/s ($dd_out)"
echo "loom: $res"
awk -v d="$dd_mb_s" -v r="$res" 'BEGIN {
  match(r, /"save_mb_s": [0-9.]+/); s = substr(r, RSTART + 13, RLENGTH - 13)
  match(r, /"load_mb_s": [0-9.]+/); l = substr(r, RSTART + 13, RLENGTH - 13)
  match(r, /"hidden_fraction": [0-9.-]+/); h = substr(r, RSTART + 19, RLENGTH - 19)
  printf "save %.0f MB/s = %.2fx dd; load %.0f MB/s; async save hides %.0f%% of the save time\n", s, s / d, l, 100 * h }'
