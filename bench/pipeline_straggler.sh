#!/usr/bin/env bash
# A straggler: pipeline stage 1 sleeps after 30% of its passes for 30% of the pass's time
# (LOOM_PIPELINE_DELAY=stage=1,prob=0.3,frac=0.3), dynamic schedule vs interleaved 1F1B (both V=2,
# M=8, P=2, stages balanced by --pipeline-split cost, one thread per rank), and both without the delay.
# Runs the four A/B interleaved, RUNS (default 3) cycles; prints the mean time per iteration after the first.
# Usage: bench/pipeline_straggler.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LOOM=$BUILD/loom
RUNS=${RUNS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
head -n 200 data/corpus/kjv.jsonl > "$TMP/c.jsonl"
"$LOOM" preprocess --input "$TMP/c.jsonl" --output-prefix "$TMP/c" --vocab-file data/gpt2/vocab.json \
  --merge-file data/gpt2/merges.txt --append-eod >/dev/null
ARGS=(--num-layers 16 --hidden-size 512 --num-attention-heads 8 --seq-length 32 --pipeline-split cost
      --virtual-pipeline-model-parallel-size 2 --micro-batch-size 1 --global-batch-size 8 --train-iters 3 --lr 1e-4
      --eval-iters 0 --log-interval 1 --pipeline-model-parallel-size 2
      --data-path "$TMP/c_text_document" --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt)
ms() {  # schedule delay: mean elapsed ms per iteration, iterations 2..
  LOOM_PIPELINE_DELAY=$2 mpirun --allow-run-as-root --oversubscribe -np 2 "$LOOM" train "${ARGS[@]}" \
    --pipeline-schedule "$1" > "$TMP/log" 2>&1 || { tail -3 "$TMP/log" >&2; echo nan; return; }
  grep -oE 'elapsed time per iteration \(ms\): [0-9.]+' "$TMP/log" | awk 'NR > 1 { s += $NF; n++ } END { printf "%.0f", s / n }'
}
SLOW="stage=1,prob=0.3,frac=0.3"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
for r in $(seq "$RUNS"); do  # A/B interleaved: each cycle runs all four
  a=$(ms interleaved "") b=$(ms dynamic "") c=$(ms interleaved "$SLOW") d=$(ms dynamic "$SLOW")
  echo "run $r: no delay: interleaved $a ms, dynamic $b ms ($(ratio "$a" "$b")); $SLOW: interleaved $c ms, dynamic $d ms ($(ratio "$c" "$d"))"
done
