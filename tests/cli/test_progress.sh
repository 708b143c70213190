# Progress of long work on stderr (util/progress.h): plain lines when stderr is not a terminal, a bar
# redrawn in place on one (run under `script`), nothing for quick work; `loom preprocess` and the
# checkpoint files `loom convert` reads and writes. LOOM_PROGRESS_DELAY/INTERVAL=0 make every step report.
set -e
source "$(dirname "$0")/lib.sh"
head -n 400 "$SRC/data/corpus/kjv.jsonl" > "$TMP/c.jsonl"
PP=("$LOOM" preprocess --input "$TMP/c.jsonl" --output-prefix "$TMP/c" --vocab-file "$VOCAB" --merge-file "$MERGES" --workers 2)
BYTES=$(stat -c %s "$TMP/c.jsonl")
TOTAL=$(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1048576 }')

# Not a terminal, quick work: nothing at all (the exact-output checks of other tests rely on it).
run "${PP[@]}"
[ "$CODE" -eq 0 ] && [ -z "$ERR" ] || fail "a quick preprocess wrote to stderr"

# Not a terminal, every step reported: lines with documents, MB of the total, MB/s and ETA; a closing line.
LOOM_PROGRESS_DELAY=0 LOOM_PROGRESS_INTERVAL=0 run "${PP[@]}"
[ "$CODE" -eq 0 ] || fail "preprocess exited $CODE"
grep -qE "^loom: preprocess: [0-9]+ documents, [0-9.]+ of $TOTAL MB \([0-9]+%\), [0-9.]+ MB/s(, ETA [0-9]+:[0-9]{2})?$" <<<"$ERR" \
  || fail "progress line format"
[ "$(grep -c '' <<<"$ERR")" -ge 2 ] || fail "expected a progress line and the closing line"
tail -n 1 <<<"$ERR" | grep -qE "^loom: preprocess: 400 documents, $TOTAL MB in [0-9.]+ s \([0-9.]+ MB/s\)$" || fail "closing line"
# Counts only grow, and never pass the total.
grep -oE '[0-9]+ documents, [0-9.]+ of' <<<"$ERR" | awk '{ if ($1 < d || $3 < m || $1 > 400) bad = 1; d = $1; m = $3 } END { exit bad }' \
  || fail "progress counts not monotonic"
grep -q $'\r' <<<"$ERR" && fail "carriage return in the plain lines"
# The outputs are the same with progress on and off.
LOOM_PROGRESS=off "$LOOM" preprocess --input "$TMP/c.jsonl" --output-prefix "$TMP/d" --vocab-file "$VOCAB" \
  --merge-file "$MERGES" --workers 2 >/dev/null
cmp -s "$TMP/c_text_document.bin" "$TMP/d_text_document.bin" && cmp -s "$TMP/c_text_document.idx" "$TMP/d_text_document.idx" \
  || fail "outputs changed"
LOOM_PROGRESS=off LOOM_PROGRESS_DELAY=0 LOOM_PROGRESS_INTERVAL=0 run "${PP[@]}"
[ -z "$ERR" ] || fail "LOOM_PROGRESS=off still reported"
OMPI_COMM_WORLD_RANK=1 LOOM_PROGRESS_DELAY=0 LOOM_PROGRESS_INTERVAL=0 run "${PP[@]}"
[ -z "$ERR" ] || fail "a rank other than 0 reported"

# On a terminal (script gives the command a pseudo-terminal): a bar redrawn with \r, ended by a newline.
if command -v script >/dev/null; then
  LOOM_PROGRESS_DELAY=0 LOOM_PROGRESS_INTERVAL=0 script -qec "$(printf '%q ' "${PP[@]}") >/dev/null" "$TMP/typescript" >/dev/null </dev/null
  grep -qa $'\rpreprocess \[[#-]\{24\}\] [0-9]* documents, [0-9.]* of '"$TOTAL"' MB' "$TMP/typescript" || fail "no progress bar on the terminal"
  grep -qa $'\rpreprocess: 400 documents, '"$TOTAL"' MB in' "$TMP/typescript" || fail "no closing bar line"
  grep -qa '^loom: preprocess' "$TMP/typescript" && fail "plain lines on a terminal"
else
  echo "SKIP: no 'script' to give the command a terminal"
fi

# Checkpoint files: `loom convert` reports the shard it checks and reads and the file it writes.
corpus small 30
run "$LOOM" train --num-layers 1 --hidden-size 32 --num-attention-heads 2 --seq-length 16 --max-position-embeddings 16 \
  --micro-batch-size 2 --global-batch-size 2 --lr 1e-3 --train-iters 1 --eval-iters 0 --data-path "$TMP/small_text_document" \
  --vocab-file "$VOCAB" --merge-file "$MERGES" --save "$TMP/ckpt"
[ "$CODE" -eq 0 ] && [ -z "$ERR" ] || fail "train (with a save) wrote to stderr or failed"
LOOM_PROGRESS_DELAY=0 LOOM_PROGRESS_INTERVAL=0 run "$LOOM" convert --load "$TMP/ckpt" --to safetensors --output "$TMP/w.safetensors"
[ "$CODE" -eq 0 ] || fail "convert exited $CODE"
SHARD=$TMP/ckpt/iter_0000001/shard_tp00_pp000.safetensors
SMB=$(awk -v b="$(stat -c %s "$SHARD")" 'BEGIN { printf "%.2f", b / 1048576 }')
WMB=$(awk -v b="$(stat -c %s "$TMP/w.safetensors")" 'BEGIN { printf "%.2f", b / 1048576 }')
grep -qxE "loom: checking $SHARD: $SMB MB in [0-9.]+ s \([0-9.]+ MB/s\)" <<<"$ERR" || fail "checking line"
grep -qxE "loom: reading $SHARD: $SMB MB in [0-9.]+ s \([0-9.]+ MB/s\)" <<<"$ERR" || fail "reading line"
grep -qE "^loom: writing $TMP/w.safetensors: [0-9.]+ of $WMB MB" <<<"$ERR" || fail "writing line"
run "$LOOM" convert --load "$TMP/ckpt" --to safetensors --output "$TMP/w2.safetensors"
[ -z "$ERR" ] || fail "a quick convert wrote to stderr"
cmp -s "$TMP/w.safetensors" "$TMP/w2.safetensors" || fail "convert output changed with progress on"
finish
