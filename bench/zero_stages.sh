#!/usr/bin/env bash
# What ZeRO and half-precision storage cost and save, on the 16M GPT (L4 h256, seq 256, micro-batch 8,
# global 16) over 2 data-parallel processes x 1 thread: step throughput relative to plain data
# parallelism (median of REPS interleaved runs), and each rank's model states (weights + gradients +
# optimizer, from the model-states line).
# Usage: bench/zero_stages.sh [build-dir]
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
ARGS=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --micro-batch-size 8
      --global-batch-size 16 --train-iters 8 --log-interval 2 --lr 1e-4 --eval-iters 0 --hidden-dropout 0
      --attention-dropout 0 --data-path "$TMP/kjv_text_document" --vocab-file data/gpt2/vocab.json
      --merge-file data/gpt2/merges.txt --initial-loss-scale 65536)
tps() { grep -oE 'tokens per second per GPU: [0-9.]+' "$1" | tail -3 | awk '{s += $6} END {printf "%.1f", s / NR}'; }
states() { grep -E '^\[Rank 0\] model states' "$1" | awk '{printf "%.1f MB (w %.1f, g %.1f, opt %.1f; working %.1f)", $17, $8, $11, $14, $21}'; }
# A first run, not reported: builds the dataset's index maps and warms the page cache.
mpirun --allow-run-as-root -np 2 --bind-to core "$LOOM" train "${ARGS[@]}" --train-iters 2 > /dev/null
# The machine's speed drifts by 10-20% between runs: every configuration runs REPS times, interleaved
# (round r runs all configurations), and reports its median.
REPS=${REPS:-3}
CFGS=("fp32" "fp32 --zero-stage 1" "fp32 --zero-stage 2" "fp32 --zero-stage 3"
      "--bf16" "--bf16 --zero-stage 3" "--fp16" "--fp16 --zero-stage 3")
for r in $(seq "$REPS"); do
  for i in "${!CFGS[@]}"; do
    flags=${CFGS[$i]#fp32}
    # shellcheck disable=SC2086
    mpirun --allow-run-as-root -np 2 --bind-to core "$LOOM" train "${ARGS[@]}" $flags > "$TMP/run_$i.log"
    tps "$TMP/run_$i.log" >> "$TMP/tps_$i"; echo >> "$TMP/tps_$i"
  done
done
median() { sort -n "$1" | awk 'NF { v[n++] = $1 } END { print v[int(n / 2)] }'; }
base=$(median "$TMP/tps_0")
printf "%-22s %12s %8s  %s\n" "configuration" "tokens/s" "vs DP" "model states per rank"
for i in "${!CFGS[@]}"; do
  t=$(median "$TMP/tps_$i")
  printf "%-22s %12.1f %7.2fx  %s\n" "${CFGS[$i]}" "$(awk -v t="$t" 'BEGIN {print 2 * t}')" \
    "$(awk -v t="$t" -v b="$base" 'BEGIN {print t / b}')" "$(states "$TMP/run_$i.log")"
done
