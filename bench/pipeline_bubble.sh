#!/usr/bin/env bash
# Measured pipeline bubble against theory, M=8 micro-batches per iteration, one thread per rank.
#  1. Splits: the 16M GPT (L8 h256, seq 64 here), whose 50304-word output layer costs about 15 blocks, at P=2
#     1F1B: even blocks, --pipeline-split cost, and the uneven-stage flags.
#  2. Bubbles with stages balanced by --pipeline-split cost on a model whose output layer one stage can
#     carry (L16 h512 seq 32: the output layer costs about 8 blocks): 1F1B, interleaved (V=2) and dynamic
#     at P=2 and P=4.
#  3. Zero-bubble (ZB-H1) against 1F1B on stages balanced by --pipeline-split cost, M=8: ZB_RUNS (3)
#     alternating runs of each at P=2 and P=4 on both models, each run's mean idle fraction and their
#     spread (SECTIONS=3: only this part; ZB_PS="2": only P=2; ZB_RUNS=N runs).
#  4. The same where the weight GEMMs dominate (L15 h512 seq 256, micro-batch 2: 512 rows a GEMM), so that B
#     and W cost about as much as F, as in Qi et al.'s setting: ZB_RUNS alternating runs of 1F1B and
#     zero-bubble at P=2 (SECTIONS=4). 15 blocks because --pipeline-split cost can balance them: [11, 4] +
#     the output layer leaves the stages within 2% per micro-batch, where 16 blocks split [12, 4] leave the
#     second stage 9% lighter (a block is 8% of a stage), idle every step whatever the schedule.
# Idle is of the step (the longest stage's span of the iteration; see pipeline_bubble.py).
# Usage: bench/pipeline_bubble.sh [build-dir]. On a 2-core machine P=4 oversubscribes the cores, which
# inflates idle time: read P=2 as the clean figure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LOOM=$BUILD/loom
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
head -n 200 data/corpus/kjv.jsonl > "$TMP/c.jsonl"
"$LOOM" preprocess --input "$TMP/c.jsonl" --output-prefix "$TMP/c" --vocab-file data/gpt2/vocab.json \
  --merge-file data/gpt2/merges.txt --append-eod >/dev/null
COMMON=(--micro-batch-size 1 --global-batch-size 8 --lr 1e-4 --eval-iters 0
        --data-path "$TMP/c_text_document" --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt)
bubble() {  # label P V model-and-pipeline-flags...
  local label=$1 P=$2 V=$3
  shift 3
  mpirun --allow-run-as-root --oversubscribe -np "$P" "$LOOM" train "${COMMON[@]}" --train-iters "${ITERS:-3}" --pipeline-model-parallel-size "$P" \
    "$@" --pipeline-trace "$TMP/trace.json" > "$TMP/log" 2>&1 || { grep -m1 "loom: error" "$TMP/log" || tail -3 "$TMP/log"; return 1; }
  echo "P=$P $label: $(grep -o 'blocks per stage \[.*\]' "$TMP/log" || echo "blocks even")"
  /usr/bin/python3 bench/pipeline_bubble.py "$TMP/trace.json" "$P" 8 "$V" | tee "$TMP/idle" | sed 's/^/  /'
  echo "$label $(grep -oE 'mean idle [0-9.]+' "$TMP/idle" | cut -d' ' -f3)" >> "$TMP/results"
}
SECTIONS=${SECTIONS:-123}
SMALL=(--num-layers 8 --hidden-size 256 --num-attention-heads 4 --seq-length 64)
WIDE=(--num-layers 16 --hidden-size 512 --num-attention-heads 8 --seq-length 32 --pipeline-split cost)
if [[ $SECTIONS == *1* ]]; then
echo "== 1. splits of the 16M GPT (L8 h256 seq 64), P=2 1F1B"
bubble "even" 2 1 "${SMALL[@]}"
bubble "--pipeline-split cost" 2 1 "${SMALL[@]}" --pipeline-split cost
bubble "--decoder-last-pipeline-num-layers 1" 2 1 "${SMALL[@]}" --decoder-last-pipeline-num-layers 1
fi
if [[ $SECTIONS == *2* ]]; then
echo "== 2. balanced by --pipeline-split cost (L16 h512 seq 32)"
for P in 2 4; do
  bubble "1f1b" "$P" 1 "${WIDE[@]}" --pipeline-schedule 1f1b
  bubble "interleaved V=2" "$P" 2 "${WIDE[@]}" --virtual-pipeline-model-parallel-size 2
  bubble "dynamic" "$P" 1 "${WIDE[@]}" --pipeline-schedule dynamic
done
fi
if [[ $SECTIONS == *3* ]]; then
echo "== 3. zero-bubble against 1F1B, balanced by --pipeline-split cost; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$TMP/results"
SPLIT_SMALL=("${SMALL[@]}" --pipeline-split cost)
for P in ${ZB_PS:-2 4}; do
  for r in $(seq "${ZB_RUNS:-3}"); do
    ITERS=5 bubble "L16h512-P$P-1f1b" "$P" 1 "${WIDE[@]}" --pipeline-schedule 1f1b
    ITERS=5 bubble "L16h512-P$P-zero-bubble" "$P" 1 "${WIDE[@]}" --pipeline-schedule zero-bubble
    ITERS=5 bubble "L8h256-P$P-1f1b" "$P" 1 "${SPLIT_SMALL[@]}" --pipeline-schedule 1f1b
    ITERS=5 bubble "L8h256-P$P-zero-bubble" "$P" 1 "${SPLIT_SMALL[@]}" --pipeline-schedule zero-bubble
  done
done
fi
if [[ $SECTIONS == *4* ]]; then
echo "== 4. zero-bubble against 1F1B where GEMMs dominate (L15 h512 seq 256, micro-batch 2), P=2; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ $SECTIONS == *3* ]] || : > "$TMP/results"
GEMMS=(--num-layers 15 --hidden-size 512 --num-attention-heads 8 --seq-length 256 --micro-batch-size 2
       --global-batch-size 16 --pipeline-split cost)
for r in $(seq "${ZB_RUNS:-3}"); do
  ITERS=4 bubble "L15h512s256-P2-1f1b" 2 1 "${GEMMS[@]}" --pipeline-schedule 1f1b
  ITERS=4 bubble "L15h512s256-P2-zero-bubble" 2 1 "${GEMMS[@]}" --pipeline-schedule zero-bubble
done
fi
if [[ $SECTIONS == *3* || $SECTIONS == *4* ]]; then
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary: mean idle fraction per run (min / mean / max over runs), zero-bubble / 1F1B"
awk '{ n[$1]++; s[$1] += $2; if (!($1 in lo) || $2 < lo[$1]) lo[$1] = $2; if (!($1 in hi) || $2 > hi[$1]) hi[$1] = $2
       v[$1] = v[$1] " " $2 }
     END { for (k in n) { m[k] = s[k] / n[k]; printf "%-26s runs:%s  min %.3f mean %.3f max %.3f\n", k, v[k], lo[k], m[k], hi[k] }
           for (k in n) if (k ~ /zero-bubble/) { b = k; sub(/zero-bubble/, "1f1b", b)
             if (b in m) printf "%-26s ratio of means %.2f\n", k, m[k] / m[b] } }' "$TMP/results" | sort
fi
