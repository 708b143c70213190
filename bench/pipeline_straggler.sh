#!/usr/bin/env bash
# Stragglers, dynamic schedule vs interleaved 1F1B (both V=2, M=8, P=2, one thread per rank), L28 h512 seq 32,
# whose --pipeline-split cost gives virtual stages of 9, 9, 9 and 1 blocks + the output layer (each within 2%
# of the others, and so the two ranks), in three cases:
#   none    no delay
#   device  stage 1 sleeps after 30% of its passes for 30% of the pass (stage=1,prob=0.3,frac=0.3)
#   link    30% of the messages stage 1 receives arrive LINK_MS (default 30) ms late, its device at full
#           speed (stage=1,prob=0.3,ms=30,link=1)
# and the dynamic schedule once more with DYN_FLAGS (default --pipeline-max-in-flight 8: room to run ahead,
# at more activation memory). Runs them A/B interleaved, RUNS (default 3) cycles; prints the mean time per
# iteration after the first and interleaved / dynamic.
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
ARGS=(--num-layers 28 --hidden-size 512 --num-attention-heads 8 --seq-length 32 --pipeline-split cost
      --virtual-pipeline-model-parallel-size 2 --micro-batch-size 1 --global-batch-size 8 --train-iters 5 --lr 1e-4
      --eval-iters 0 --log-interval 1 --pipeline-model-parallel-size 2
      --data-path "$TMP/c_text_document" --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt)
ms() {  # schedule delay [flags...]: mean elapsed ms per iteration, iterations 2..
  LOOM_PIPELINE_DELAY=$2 mpirun --allow-run-as-root --oversubscribe -np 2 "$LOOM" train "${ARGS[@]}" \
    --pipeline-schedule "$1" "${@:3}" > "$TMP/log" 2>&1 || { tail -3 "$TMP/log" >&2; echo nan; return; }
  grep -oE 'elapsed time per iteration \(ms\): [0-9.]+' "$TMP/log" | awk 'NR > 1 { s += $NF; n++ } END { printf "%.0f", s / n }'
}
read -r -a DYN <<<"${DYN_FLAGS:---pipeline-max-in-flight 8}"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
for r in $(seq "$RUNS"); do  # A/B interleaved: each cycle runs every case
  for c in none device link; do
    case $c in
      none) d="" ;;
      device) d="stage=1,prob=0.3,frac=0.3" ;;
      link) d="stage=1,prob=0.3,ms=${LINK_MS:-30},link=1" ;;
    esac
    a=$(ms interleaved "$d") b=$(ms dynamic "$d") e=$(ms dynamic "$d" "${DYN[@]}")
    echo "run $r $c: interleaved $a ms, dynamic $b ms ($(ratio "$a" "$b")), dynamic ${DYN[*]} $e ms ($(ratio "$a" "$e"))"
  done
done
