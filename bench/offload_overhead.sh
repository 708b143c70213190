#!/usr/bin/env bash
# Step-time overhead of --offload-optimizer nvme on the 16M GPT (Adam state 129 MB) with a 16 MB budget,
# against the state in memory, same run. Usage: bench/offload_overhead.sh [build-dir]
source "$(dirname "$0")/lib.sh"
ARGS=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --micro-batch-size 8 --global-batch-size 8
      --train-iters 8 --log-interval 4 --lr 1e-4 --eval-iters 0 --data-path "$TMP/kjv_text_document"
      --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt)
step() { grep -oE 'elapsed time per iteration \(ms\): [0-9.]+' "$1" | tail -1 | awk '{print $6}'; }
opt() { grep -oE 'optimizer: [0-9.]+' "$1" | tail -1 | awk '{print $2}'; }
OMP_NUM_THREADS=2 "$BUILD/loom" train "${ARGS[@]}" > "$TMP/mem.log"
OMP_NUM_THREADS=2 "$BUILD/loom" train "${ARGS[@]}" --offload-optimizer nvme --offload-path "$TMP/nvme" \
  --memory-budget-gb 0.015 > "$TMP/nvme.log"
awk -v a="$(step "$TMP/mem.log")" -v b="$(step "$TMP/nvme.log")" -v oa="$(opt "$TMP/mem.log")" -v ob="$(opt "$TMP/nvme.log")" 'BEGIN {
  printf "step: %.1f ms in memory, %.1f ms offloaded (+%.1f%%); optimizer: %.1f ms vs %.1f ms\n", a, b, 100 * (b - a) / a, oa, ob }'
