# --offload-optimizer nvme: Adam moments in a file, streamed in blocks through the step. With a memory
# budget far below the optimizer state the run gives the same losses, to the last digit, as keeping the
# state in memory, and checkpoints save and resume it exactly.
set -e
source "$(dirname "$0")/lib.sh"
SRC=${LOOM_SOURCE_DIR:?}
VOCAB=$SRC/data/gpt2/vocab.json
MERGES=$SRC/data/gpt2/merges.txt
head -n 30 "$SRC/data/corpus/kjv.jsonl" > "$TMP/c.jsonl"
"$LOOM" preprocess --input "$TMP/c.jsonl" --output-prefix "$TMP/c" --vocab-file "$VOCAB" --merge-file "$MERGES" \
  --append-eod >/dev/null
# 3.3M parameters: 26 MB of Adam state; the budget below keeps 3 blocks of 44739 parameters (1 MiB).
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 4 --global-batch-size 8
      --train-iters 20 --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 2 --log-interval 1 --eval-iters 0
      --data-path "$TMP/c_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
fields() { grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' "$1"; }
run "$LOOM" train "${ARGS[@]}"
cp "$TMP/out" "$TMP/memory.log"
run "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path "$TMP/nvme" --memory-budget-gb 0.001 --save "$TMP/ck" \
  --save-interval 10
[ "$CODE" -eq 0 ] || fail "offloaded run"
expect_line "> optimizer state offloaded to $TMP/nvme in blocks of 44739 parameters"
diff <(fields "$TMP/memory.log") <(fields "$TMP/out") >/dev/null || fail "offloading changed the losses"
[ -z "$(ls -A "$TMP/nvme")" ] || fail "the offload file was left behind"
# Resume from iteration 10 with the state offloaded: the same second half.
run "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path "$TMP/nvme" --memory-budget-gb 0.001 \
  --load "$TMP/ck/iter_0000010"
diff <(fields "$TMP/memory.log" | tail -10) <(fields "$TMP/out") >/dev/null || fail "offloaded resume differs"
expect_error "--offload-optimizer nvme needs --offload-path" "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme
expect_error "--offload-path: cannot create" "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path /proc/nope
finish
