# The memory preflight of `loom train`: the prediction equals the measured memory lines (model states and
# activations to the byte, the peak within 15% of the measured peak RSS), `--train-iters 0` is a dry run
# that builds nothing, and a run that cannot fit stops before the data and model with one line giving
# both figures and what would fit.
set -e
source "$(dirname "$0")/lib.sh"

corpus tiny 200
TRAIN=(train --data-path "$TMP/tiny_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES" --split 98,2,0
  --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --micro-batch-size 2
  --global-batch-size 4 --lr 1e-3 --log-interval 2 --eval-interval 1000 --eval-iters 0 --threads 2)

field() {  # field "LINE PREFIX" NAME: the number after "NAME: " on the first line starting with the prefix
  grep -F -- "$1" <<<"$OUT" | head -1 | sed -E "s/.*\\| $2: ([0-9.]+).*/\\1/"
}

# Measured vs predicted, for fp32, fp16 with full recompute and a save, and bf16 with selective recompute.
check_prediction() {  # check_prediction NAME FLAGS...
  local name=$1
  shift
  run "$LOOM" "${TRAIN[@]}" --train-iters 2 "$@"
  [ "$CODE" -eq 0 ] || { fail "$name: training exited $CODE"; return; }
  local states act rss
  states=$(grep -F "[Rank 0] model states (MB)" <<<"$OUT" | head -1 |
    sed -E 's/.*weights: ([0-9.]+) \| gradients: ([0-9.]+) \| optimizer: ([0-9.]+) \| total: ([0-9.]+) \| working buffers: ([0-9.]+).*/\4 \5/' |
    awk '{printf "%.2f", $1 + $2}')
  act=$(field "[Rank 0] activations (MB)" total)
  rss=$(field "[Rank 0] (after" "max reserved")
  run "$LOOM" "${TRAIN[@]}" --train-iters 0 "$@"
  [ "$CODE" -eq 0 ] || { fail "$name: the dry run exited $CODE"; return; }
  local p_states p_act p_peak
  p_states=$(field "[Rank 0] predicted memory (MB)" "model states")
  p_act=$(field "[Rank 0] predicted memory (MB)" activations)
  p_peak=$(field "[Rank 0] predicted memory (MB)" peak)
  [ "$p_states" = "$states" ] || fail "$name: predicted model states $p_states MB, measured $states MB"
  awk -v p="$p_act" -v m="$act" 'BEGIN { d = p - m; exit !(d < 0.01 && d > -0.01) }' ||
    fail "$name: predicted activations $p_act MB, measured $act MB"
  awk -v p="$p_peak" -v m="$rss" 'BEGIN { r = p / m; exit !(r > 0.85 && r < 1.15) }' ||
    fail "$name: predicted peak $p_peak MB, measured peak RSS $rss MB (not within 15%)"
  echo "$name: states $p_states/$states MB, activations $p_act/$act MB, peak $p_peak/$rss MB (predicted/measured)"
}
check_prediction fp32
check_prediction fp16-full-save --fp16 --recompute-granularity full --save "$TMP/ckpt" --save-interval 1
check_prediction bf16-selective --bf16 --recompute-granularity selective

# The dry run builds neither data nor model: no index maps are written, nothing is allocated for the model.
run "$LOOM" "${TRAIN[@]}" --train-iters 1
count=$(grep -F " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): " <<<"$OUT")
rm -f "$TMP"/tiny_text_document_*indexmap*
run "$LOOM" "${TRAIN[@]}" --train-iters 0
[ "$CODE" -eq 0 ] || fail "dry run exited $CODE"
expect_line "dry run (--train-iters 0): nothing trained, no model or data built"
expect_line "$count"
if ls "$TMP"/tiny_text_document_*indexmap* >/dev/null 2>&1; then fail "the dry run built index maps"; fi
if grep -q "building GPT model" <<<"$OUT"; then fail "the dry run built the model"; fi

# A machine too small: refused at once, before the data, with both figures and what would fit.
# (8 layers of 1024 tokens: about 264 MB, 211 MB with full recompute.)
export LOOM_MEMORY_AVAILABLE_MB=240
expect_error "but the node has 240.0 MB available; it would fit with --recompute-granularity full" \
  "$LOOM" "${TRAIN[@]}" --train-iters 2 --seq-length 1024 --max-position-embeddings 1024 --num-layers 8
if grep -q "building train, validation, and test datasets" <<<"$OUT"; then fail "the refusal came after the data"; fi
case "$ERR" in *"this run needs about "*" of memory on node "*"(1 rank; rank 0: model states "*) ;;
  *) fail "the refusal does not give the rank's figures: $ERR" ;; esac
unset LOOM_MEMORY_AVAILABLE_MB

# Sizes that cannot fit fail in a second, not after minutes: a sequence of 10 million tokens, and a tiny
# dataset read for 10 billion iterations (its index maps alone would take terabytes).
start=$(date +%s)
expect_error "available" "$LOOM" "${TRAIN[@]}" --train-iters 2 --seq-length 10000000 --max-position-embeddings 10000000
expect_error "train on fewer samples (--train-iters, --global-batch-size) or more data" "$LOOM" "${TRAIN[@]}" --train-iters 10000000000
elapsed=$(($(date +%s) - start))
[ "$elapsed" -le 20 ] || fail "the two refusals took $elapsed s"

finish
