#!/usr/bin/env bash
# Data-parallel scaling on this 2-core machine, the 16M GPT (L4 h256, seq 256, micro-batch 8, global 16):
# one process with 2 threads against 2 data-parallel processes with 1 thread each (same global batch),
# and the share of the step spent waiting on the gradient all-reduce. Usage: bench/dp_scaling.sh [build-dir]
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ARGS=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --micro-batch-size 8
      --global-batch-size 16 --train-iters 6 --log-interval 2 --lr 1e-4 --eval-iters 0 --hidden-dropout 0
      --attention-dropout 0 --data-path "$TMP/kjv_text_document" --vocab-file data/gpt2/vocab.json
      --merge-file data/gpt2/merges.txt)
tps() { grep -oE 'tokens per second per GPU: [0-9.]+' "$1" | tail -2 | awk '{s += $6} END {printf "%.1f", s / NR}'; }
OMP_NUM_THREADS=2 "$LOOM" train "${ARGS[@]}" > "$TMP/one.log"
OMP_NUM_THREADS=1 mpirun --allow-run-as-root -np 2 --bind-to core "$LOOM" train "${ARGS[@]}" --overlap-grad-reduce \
  > "$TMP/dp2.log"
one=$(tps "$TMP/one.log")
dp=$(tps "$TMP/dp2.log")  # per process
wait_ms=$(grep -oE 'backward-params-all-reduce: [0-9.]+' "$TMP/dp2.log" | tail -2 | awk '{s += $2} END {printf "%.2f", s / NR}')
step_ms=$(grep -oE 'elapsed time per iteration \(ms\): [0-9.]+' "$TMP/dp2.log" | tail -2 | awk '{s += $6} END {printf "%.1f", s / NR}')
awk -v one="$one" -v dp="$dp" -v w="$wait_ms" -v s="$step_ms" 'BEGIN {
  printf "1 process x 2 threads: %.1f tokens/s\n2 DP processes x 1 thread: %.1f tokens/s (%.1f each)\n", one, 2 * dp, dp
  printf "DP2 / single = %.2fx; waiting on the gradient all-reduce: %.2f ms of a %.1f ms step (%.1f%%)\n",
         2 * dp / one, w, s, 100 * w / s }'
