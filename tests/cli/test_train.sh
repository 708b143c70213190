# `loom train` end to end on a small slice of the bundled corpus: Megatron's log lines, a falling loss,
# saved weights that `loom generate` reads; and every kind of bad input refused with one line.
set -e
source "$(dirname "$0")/lib.sh"
SRC=${LOOM_SOURCE_DIR:?}
VOCAB=$SRC/data/gpt2/vocab.json
MERGES=$SRC/data/gpt2/merges.txt
head -n 60 "$SRC/data/corpus/kjv.jsonl" > "$TMP/small.jsonl"
run "$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/small" --vocab-file "$VOCAB" \
  --merge-file "$MERGES" --append-eod --workers 2
[ "$CODE" -eq 0 ] || fail "preprocess exited $CODE"
DATA=$TMP/small_text_document

MODEL=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --max-position-embeddings 32)
COMMON=(--micro-batch-size 4 --global-batch-size 8 --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine
        --lr-warmup-iters 5 --hidden-dropout 0.1 --attention-dropout 0.1 --data-path "$DATA"
        --vocab-file "$VOCAB" --merge-file "$MERGES" --split 90,5,5)

run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 60 --log-interval 20 --eval-interval 30 \
  --eval-iters 2 --save "$TMP/ckpt"
[ "$CODE" -eq 0 ] || fail "train exited $CODE"
[ -z "$ERR" ] || fail "train wrote to stderr"
expect_line "using world size: 1, data-parallel size: 1, context-parallel size: 1, tensor-model-parallel size: 1, pipeline-model-parallel size: 1"
expect_line "  num_layers ...................................... 2"
expect_line "  lr_decay_style .................................. cosine"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 3321600"
expect_line "setting number of micro-batches to constant 2"
grep -qE '^ \[[0-9-]{10} [0-9:]{8}\] iteration       20/      60 \| consumed samples:          160 \| elapsed time per iteration \(ms\): [0-9.]+ \| throughput per GPU \(TFLOP/s/GPU\): [0-9.]+ \| tokens per second per GPU: [0-9.]+ \| learning rate: [0-9.]{8}E[-+][0-9]{2} \| global batch size:     8 \| lm loss: [0-9.]{8}E\+[0-9]{2} \| loss scale: 1.0 \| grad norm: [0-9.]+ \| number of skipped iterations:   0 \| number of nan iterations:   0 \|$' <<<"$OUT" \
  || fail "iteration line format"
grep -qE '^\[Rank 0\] \(after 20 iterations\) memory \(MB\) \| allocated: [0-9.]+ \| max allocated: [0-9.]+ \| reserved: [0-9.]+ \| max reserved: [0-9.]+$' <<<"$OUT" || fail "memory line"
grep -qE '^time \(ms\) \| forward-compute: [0-9.]+ \| backward-compute: [0-9.]+ \| optimizer-clip-main-grad: [0-9.]+ \| optimizer: [0-9.]+ \| batch-generator: [0-9.]+$' <<<"$OUT" || fail "timer line"
grep -qE '^ validation loss at iteration 30 \| lm loss value: [0-9.]+E\+[0-9]{2} \| lm loss PPL: [0-9.]+E\+[0-9]{2} \| $' <<<"$OUT" || fail "validation line"
grep -qE '^ validation loss at iteration 60 on test set \| ' <<<"$OUT" || fail "test line"
expect_line "saving checkpoint at iteration      60 to $TMP/ckpt"
[ "$(cat "$TMP/ckpt/latest_checkpointed_iteration.txt")" = "60" ] || fail "latest_checkpointed_iteration.txt"
[ -f "$TMP/ckpt/iter_0000060/metadata.json" ] || fail "checkpoint metadata"
[ -f "$TMP/ckpt/iter_0000060/shard_tp00_pp000.safetensors" ] || fail "checkpoint shard"
first=$(grep -oE 'iteration       20/.*lm loss: [0-9.E+-]+' <<<"$OUT" | grep -oE '[0-9.]+E[-+][0-9]+$')
last=$(grep -oE 'iteration       60/.*lm loss: [0-9.E+-]+' <<<"$OUT" | grep -oE '[0-9.]+E[-+][0-9]+$')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.0) }' || fail "loss did not fall by 1 nat ($first -> $last)"

# The same command trains the same model: data order, dropout and initialisation follow the seed.
cp "$TMP/out" "$TMP/first_run"
run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 60 --log-interval 20 --eval-interval 30 --eval-iters 2
diff <(grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' "$TMP/first_run") \
     <(grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' <<<"$OUT") >/dev/null || fail "a second run differs"

# Activation recompute changes memory, not results: the same loss and grad norm lines, to the last digit.
for g in full selective; do
  run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 60 --log-interval 20 --eval-interval 30 --eval-iters 2 \
    --recompute-granularity $g
  diff <(grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' "$TMP/first_run") \
       <(grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' <<<"$OUT") >/dev/null || fail "recompute $g changed the run"
done

# Megatron's document-aware batches: loss masked on end-of-document tokens, positions and attention reset
# at document boundaries. A different objective, so only: it trains.
run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 40 --log-interval 20 --eval-iters 0 \
  --eod-mask-loss --reset-position-ids --reset-attention-mask
[ "$CODE" -eq 0 ] || fail "document-aware training"
grep -q "reset_attention_mask ............................ True" <<<"$OUT" || fail "argument dump"
grep -qE 'iteration +40/.*lm loss: [0-9]' <<<"$OUT" || fail "document-aware run logs a loss"

run "$LOOM" generate --load "$TMP/ckpt" --prompt "And the LORD" --max-new-tokens 12 --seed 3
[ "$CODE" -eq 0 ] || fail "generate exited $CODE"
case "$OUT" in "And the LORD"*) ;; *) fail "generate output starts with the prompt" ;; esac
run "$LOOM" generate --load "$TMP/ckpt" --prompt "And the LORD" --max-new-tokens 12 --temperature 0
greedy1=$OUT
run "$LOOM" generate --load "$TMP/ckpt" --prompt "And the LORD" --max-new-tokens 12 --temperature 0 --seed 9
[ "$OUT" = "$greedy1" ] || fail "greedy decoding depends on the seed"

# Bad input: one line, exit 2, before any work (nothing on stdout).
expect_error "unrecognized argument '--num-layer'" "$LOOM" train --num-layer 2
expect_error "argument --hidden-size: invalid int value: 'big'" "$LOOM" train --hidden-size big
expect_error "argument --lr: invalid float value: 'fast'" "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --lr fast
expect_error "--hidden-size (64) must be divisible by --num-attention-heads (5)" \
  "$LOOM" train --num-layers 2 --hidden-size 64 --num-attention-heads 5 --seq-length 32 "${COMMON[@]}" --train-iters 1
expect_error "--seq-length (64) exceeds --max-position-embeddings (32)" \
  "$LOOM" train --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --max-position-embeddings 32 "${COMMON[@]}" --train-iters 1
expect_error "data file $TMP/nothing.bin not found" \
  "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 10 --data-path "$TMP/nothing"
[ -z "$OUT" ] || fail "a refused run printed to stdout"
expect_error "--global-batch-size (6) must be a multiple of --micro-batch-size (4)" \
  "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 1 --global-batch-size 6
expect_error "$TMP/small_text_document.idx: truncated or not a safetensors file" "$LOOM" generate --load "$TMP/small_text_document.idx" --prompt x
expect_error "checkpoint directory $TMP/none does not exist" "$LOOM" generate --load "$TMP/none" --prompt x
printf 'garbage' > "$TMP/bad.safetensors"
expect_error "$TMP/bad.safetensors: not a safetensors file" "$LOOM" generate --load "$TMP/bad.safetensors" --prompt x
# Weights of another model shape are refused by name.
run "$LOOM" train --num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 "${COMMON[@]}" --train-iters 10 \
  --load "$TMP/ckpt"
[ "$CODE" -eq 2 ] || fail "loading weights of another shape should fail"
grep -q "loom: error: checkpoint $TMP/ckpt was trained with --hidden-size 64, this run has 32" <<<"$ERR" || fail "shape mismatch message"
finish
