#!/usr/bin/env bash
# Tokenisation throughput: `loom preprocess` (1 and 2 workers) vs the npm package gpt-3-encoder in node,
# on the same text, in the same run. Input: the bundled corpus (data/corpus/kjv.jsonl) repeated
# REPEAT times (default 3, ~12 MB). MB/s = input JSONL bytes / seconds of reading, JSON parsing and
# tokenising (and, for loom, writing the .bin/.idx); start-up (loading the vocabulary) is excluded for
# both. Best of RUNS (default 3) runs each.
#
#   bash bench/preprocess_bench.sh [build dir]      (default: build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
REPEAT=${REPEAT:-3}
RUNS=${RUNS:-3}
LOOM=$BUILD/loom
VOCAB=$ROOT/data/gpt2/vocab.json
MERGES=$ROOT/data/gpt2/merges.txt
[ -x "$LOOM" ] || { echo "error: $LOOM is not built" >&2; exit 2; }
command -v node >/dev/null || { echo "error: node is not on PATH" >&2; exit 2; }
MODULES=$BUILD/npm/node_modules
if [ ! -f "$MODULES/gpt-3-encoder/Encoder.js" ]; then
  echo "installing gpt-3-encoder@1.1.4 into $BUILD/npm ..." >&2
  npm install --no-audit --no-fund --prefix "$BUILD/npm" gpt-3-encoder@1.1.4 >/dev/null
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for _ in $(seq "$REPEAT"); do cat "$ROOT/data/corpus/kjv.jsonl"; done >"$T/in.jsonl"
BYTES=$(stat -c %s "$T/in.jsonl")

best() { sort -g | head -n 1; }

loom_seconds() {  # workers -> seconds of processing, as loom reports it
  for _ in $(seq "$RUNS"); do
    "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/out" --vocab-file "$VOCAB" --merge-file "$MERGES" \
      --append-eod --workers "$1" 2>/dev/null | sed -n 's/^Processed .* in \([0-9.]*\) s .*/\1/p'
  done | best
}

node_seconds() {
  for _ in $(seq "$RUNS"); do
    node "$ROOT/tests/parity/gpt3_encoder_ref.js" "$MODULES" bench "$T/in.jsonl" text | awk '{print $2}'
  done | best
}

L1=$(loom_seconds 1)
L2=$(loom_seconds 2)
N=$(node_seconds)
mbs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.2f", b / s / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b / a }'; }
echo "input: data/corpus/kjv.jsonl x$REPEAT = $(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1048576 }') MB; $(nproc) cores; best of $RUNS"
printf '%-34s %8s s %9s MB/s\n' "gpt-3-encoder (node $(node --version))" "$N" "$(mbs "$N")"
printf '%-34s %8s s %9s MB/s   %5sx gpt-3-encoder\n' "loom preprocess --workers 1" "$L1" "$(mbs "$L1")" "$(ratio "$L1" "$N")"
printf '%-34s %8s s %9s MB/s   %5sx gpt-3-encoder\n' "loom preprocess --workers 2" "$L2" "$(mbs "$L2")" "$(ratio "$L2" "$N")"
