# `loom report` on the five reference logs and on a real `loom train` log: chosen values equal the logs'
# text, every chart's data equals the CSV (and its polyline maps back to it), the page renders in
# headless Chromium; bad input gets one line and exit 2, before any output is written.
set -e
source "$(dirname "$0")/lib.sh"
SRC=${LOOM_SOURCE_DIR:?}
LOGS=$SRC/tests/data/reference_logs
CHECK="/usr/bin/python3 $SRC/tests/cli/report_check.py"

run "$LOOM" report "$LOGS"/*.log.gz --csv "$TMP/ref.csv" --html "$TMP/ref.html"
[ "$CODE" -eq 0 ] || fail "report exited $CODE"
expect_line "$LOGS/000-coca-evaclip-deepspeed-zero1.log.gz: eva-clip log, 17 logged iterations (1 to 1601), 14 metrics"
expect_line "$LOGS/001-gpt2-deepspeed-zero2-offload.log.gz: deepspeed log, 4601 logged iterations (0 to 23000), 18 metrics"
expect_line "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz: megatron log, 24 logged iterations (1 to 24), 23 metrics"
expect_line "$LOGS/003-llama-1b-pipeline8-autosplit.log.gz: pipeline-splitter log, 20 logged iterations (1 to 20), 4 metrics"
expect_line "$LOGS/004-megatron-gpt-tp2-pp4-vpp4.log.gz: megatron log, 1 logged iterations (1 to 1), 11 metrics"
$CHECK spot "$TMP/ref.csv" "$LOGS" || fail "spot checks against the reference logs"
$CHECK page "$TMP/ref.csv" "$TMP/ref.html" || fail "reference page data"
# The same table from the plain-text log as from its gzip.
gunzip -c "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz" > "$TMP/002-megatron-gpt2-1.5b-fp16.log"
run "$LOOM" report "$TMP/002-megatron-gpt2-1.5b-fp16.log" --csv "$TMP/plain.csv"
cmp -s <(grep '^002-' "$TMP/ref.csv" | cut -d, -f1-2) <(tail -n +2 "$TMP/plain.csv" | cut -d, -f1-2) || fail "plain vs gzip rows"

# Loom's own log, from a short real run (fp16, so the loss scale and skipped iterations move).
corpus small 40
run "$LOOM" train --num-layers 1 --hidden-size 32 --num-attention-heads 2 --seq-length 16 --max-position-embeddings 16 \
  --micro-batch-size 2 --global-batch-size 4 --lr 1e-3 --train-iters 4 --log-interval 1 --eval-interval 2 --eval-iters 1 \
  --fp16 --initial-loss-scale 4096 --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES" --split 90,5,5
[ "$CODE" -eq 0 ] || fail "loom train exited $CODE"
cp "$TMP/out" "$TMP/loom-run.log"
run "$LOOM" report "$TMP/loom-run.log" "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz" --csv "$TMP/two.csv" --html "$TMP/two.html"
[ "$CODE" -eq 0 ] || fail "report of the Loom log exited $CODE"
expect_line "$TMP/loom-run.log: loom log, 4 logged iterations (1 to 4), 26 metrics"
$CHECK loom "$TMP/two.csv" "$TMP/loom-run.log" || fail "Loom log values"
$CHECK page "$TMP/two.csv" "$TMP/two.html" || fail "two-run page data"

# The page in a real browser: not blank, every run's colour on screen.
if command -v chromium >/dev/null; then
  start=$(date +%s)
  timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1800 \
    --user-data-dir="$TMP/chromium" --screenshot="$TMP/ref.png" "file://$TMP/ref.html" >/dev/null 2>&1 || true
  # (headless Chromium now and then lingers after writing the screenshot: the file is what counts)
  [ -s "$TMP/ref.png" ] || fail "chromium wrote no screenshot of the page"
  $CHECK png "$TMP/ref.png" "$TMP/ref.html" || fail "screenshot"
  echo "chromium rendered the page in $(( $(date +%s) - start )) s"
else
  echo "SKIP: chromium is not installed (scripts/install-deps.sh installs it), the page was not rendered"
fi

# Bad input: one line, exit 2, nothing written.
printf 'hello\nworld\n' > "$TMP/notes.txt"
expect_error "$TMP/notes.txt: not a Megatron, DeepSpeed, EVA-CLIP, pipeline-splitter or Loom log" \
  "$LOOM" report "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz" "$TMP/notes.txt" --csv "$TMP/bad.csv" --html "$TMP/bad.html"
[ ! -e "$TMP/bad.csv" ] && [ ! -e "$TMP/bad.html" ] || fail "outputs written for an unrecognised log"
expect_error "$TMP/missing.log: cannot open: No such file or directory" "$LOOM" report "$TMP/missing.log" --csv "$TMP/bad.csv"
expect_error "--csv $TMP/nodir/x.csv: cannot write: directory $TMP/nodir does not exist" \
  "$LOOM" report "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz" --csv "$TMP/nodir/x.csv"
expect_error "--html $TMP: is a directory" "$LOOM" report "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz" --html "$TMP"
expect_error "--csv $TMP/002-megatron-gpt2-1.5b-fp16.log: is one of the logs read" \
  "$LOOM" report "$TMP/002-megatron-gpt2-1.5b-fp16.log" --csv "$TMP/002-megatron-gpt2-1.5b-fp16.log"
expect_error "no log given" "$LOOM" report --csv "$TMP/bad.csv"
expect_error "nothing to write: give --csv and/or --html" "$LOOM" report "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz"
expect_error "$TMP: is a directory, expected a log file" "$LOOM" report "$TMP" --csv "$TMP/bad.csv"
expect_error "unrecognized argument '--pdf'" "$LOOM" report "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz" --pdf x
# An unwritable directory is refused before the (long) parse. Root ignores permissions, so only as a user.
if [ "$(id -u)" -ne 0 ]; then
  mkdir "$TMP/ro" && chmod 555 "$TMP/ro"
  expect_error "--csv $TMP/ro/x.csv: cannot write: Permission denied" \
    "$LOOM" report "$LOGS/002-megatron-gpt2-1.5b-fp16.log.gz" --csv "$TMP/ro/x.csv"
fi
[ ! -e "$TMP/bad.csv" ] || fail "an output was written on bad input"
finish
