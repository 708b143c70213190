#!/usr/bin/env bash
# Tokenisation throughput: `loom preprocess` (1 and 2 workers) vs the npm package gpt-3-encoder in node,
# on the same text, in the same run. Input: the bundled corpus (data/corpus/kjv.jsonl) repeated
# REPEAT times (default 3, ~12 MB). MB/s = input JSONL bytes / seconds of reading, JSON parsing and
# tokenising (and, for loom, writing the .bin/.idx); start-up (loading the vocabulary) is excluded for
# both. MB/CPU-second divides by the process's whole CPU time instead (start-up included), which other
# load on the machine hardly disturbs. Best of RUNS (default 3) runs each.
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
TIMEFORMAT='%U %S'

# Each run prints "<processing seconds> <cpu seconds>": processing = wall time of reading, parsing,
# tokenising (and writing) as the tool reports it; cpu = user + sys of the whole process, start-up
# included (robust to other load on the machine; a per-core figure for 1 worker and for node).
loom_run() {
  { time "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/out" --vocab-file "$VOCAB" --merge-file "$MERGES" \
      --append-eod --workers "$1" >"$T/log" 2>/dev/null; } 2>"$T/time"
  echo "$(sed -n 's/^Processed .* in \([0-9.]*\) s .*/\1/p' "$T/log") $(awk '{print $1 + $2}' "$T/time")"
}
node_run() {
  { time node "$ROOT/tests/parity/gpt3_encoder_ref.js" "$MODULES" bench "$T/in.jsonl" text >"$T/log"; } 2>"$T/time"
  echo "$(awk '{print $2}' "$T/log") $(awk '{print $1 + $2}' "$T/time")"
}
measure() {  # command... -> "<best processing seconds> <best cpu seconds>"
  for _ in $(seq "$RUNS"); do "$@"; done >"$T/runs"
  echo "$(awk '{print $1}' "$T/runs" | best) $(awk '{print $2}' "$T/runs" | best)"
}

read -r N NC < <(measure node_run)
read -r L1 L1C < <(measure loom_run 1)
read -r L2 L2C < <(measure loom_run 2)
mbs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.2f", b / s / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", b / a }'; }
echo "input: data/corpus/kjv.jsonl x$REPEAT = $(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1048576 }') MB; $(nproc) cores; best of $RUNS; load average $(cut -d' ' -f1 /proc/loadavg)"
printf '%-30s %10s %8s %8s %14s %8s\n' "" "processing" "MB/s" "ratio" "MB/CPU-second" "ratio"
printf '%-30s %9.3fs %8s %8s %14s %8s\n' "gpt-3-encoder (node $(node --version))" "$N" "$(mbs "$N")" "1.0x" "$(mbs "$NC")" "1.0x"
printf '%-30s %9.3fs %8s %8s %14s %8s\n' "loom preprocess --workers 1" "$L1" "$(mbs "$L1")" "$(ratio "$L1" "$N")" "$(mbs "$L1C")" "$(ratio "$L1C" "$NC")"
printf '%-30s %9.3fs %8s %8s %14s %8s\n' "loom preprocess --workers 2" "$L2" "$(mbs "$L2")" "$(ratio "$L2" "$N")" "$(mbs "$L2C")" "$(ratio "$L2C" "$NC")"
