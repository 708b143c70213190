#!/usr/bin/env bash
# Measured pipeline bubble against theory, on the 16M GPT (L8 here so P=4 with 2 virtual stages divides),
# M=8 micro-batches per iteration, one thread per rank. Usage: bench/pipeline_bubble.sh [build-dir]
# On this 2-core machine P=4 oversubscribes the cores, which inflates idle time: read P=2 as the clean figure.
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
for cfg in "2 1f1b 1" "2 interleaved 2" "4 1f1b 1" "4 interleaved 2"; do
  set -- $cfg
  P=$1 S=$2 V=$3
  extra=()
  [ "$V" -gt 1 ] && extra=(--virtual-pipeline-model-parallel-size "$V")
  mpirun --allow-run-as-root --oversubscribe -np "$P" "$LOOM" train --num-layers 8 --hidden-size 256 \
    --num-attention-heads 4 --seq-length 256 --micro-batch-size 1 --global-batch-size 8 --train-iters 4 \
    --lr 1e-4 --pipeline-model-parallel-size "$P" --pipeline-schedule "$S" "${extra[@]}" --eval-iters 0 \
    --data-path "$TMP/c_text_document" --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt \
    --pipeline-trace "$TMP/trace.json" > "$TMP/log" 2>&1
  echo "P=$P $S V=$V:"
  /usr/bin/python3 bench/pipeline_bubble.py "$TMP/trace.json" "$P" 8 "$V" | sed 's/^/  /'
done
