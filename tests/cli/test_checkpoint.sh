# Checkpoints on one process: resuming gives the same run bit for bit; a kill during a save leaves the
# previous checkpoint loadable; SIGTERM checkpoints and exits 0; damaged checkpoints are refused by name.
set -e
source "$(dirname "$0")/lib.sh"
corpus small 40
ARGS=(--num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 3 --lr-decay-iters 30 --log-interval 1
      --eval-interval 10 --eval-iters 1 --hidden-dropout 0.1 --attention-dropout 0.1 --split 90,5,5 --seed 5
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
fields() { grep -oE '(iteration +[0-9]+/ +[0-9]+ \| consumed samples: +[0-9]+|learning rate: .* grad norm: [0-9.]+|validation loss at .*)' "$1"; }

# 30 straight vs 15 + resume + 15.
run "$LOOM" train "${ARGS[@]}" --train-iters 30 --save "$TMP/straight"
[ "$CODE" -eq 0 ] || fail "straight run"
cp "$TMP/out" "$TMP/straight.log"
run "$LOOM" train "${ARGS[@]}" --train-iters 30 --exit-interval 15 --save "$TMP/split"
[ "$CODE" -eq 0 ] || fail "first half"
expect_line "exiting program at iteration 15 (--exit-interval)"
cp "$TMP/out" "$TMP/half1.log"
[ "$(cat "$TMP/split/latest_checkpointed_iteration.txt")" = 15 ] || fail "latest after the first half"
run "$LOOM" train "${ARGS[@]}" --train-iters 30 --load "$TMP/split" --save "$TMP/split"
[ "$CODE" -eq 0 ] || fail "second half"
expect_line "  successfully loaded checkpoint from $TMP/split at iteration 15"
cat "$TMP/half1.log" "$TMP/out" > "$TMP/resumed.log"
diff <(fields "$TMP/straight.log" | grep -v 'on validation set\|on test set') \
     <(fields "$TMP/resumed.log" | grep -v 'on validation set\|on test set') > "$TMP/diff" || { fail "resumed run differs"; head "$TMP/diff"; }
cmp -s "$TMP/straight/iter_0000030/shard_tp00_pp000.safetensors" "$TMP/split/iter_0000030/shard_tp00_pp000.safetensors" \
  || fail "final weights and optimizer state differ after resuming"

# A kill -9 in the middle of a save: the previous checkpoint stays the latest and loads.
export LOOM_TEST_CHECKPOINT_DELAY_MS=3000
"$LOOM" train "${ARGS[@]}" --train-iters 40 --load "$TMP/split" --save "$TMP/split" --save-interval 1 >/dev/null 2>&1 &
pid=$!
unset LOOM_TEST_CHECKPOINT_DELAY_MS
for _ in $(seq 100); do [ -d "$TMP/split/iter_0000031.tmp" ] && break; sleep 0.1; done
[ -d "$TMP/split/iter_0000031.tmp" ] || fail "the slowed save did not start"
kill -9 $pid || true
wait $pid 2>/dev/null || true
[ "$(cat "$TMP/split/latest_checkpointed_iteration.txt")" = 30 ] || fail "latest changed by a killed save"
run "$LOOM" generate --load "$TMP/split" --prompt "And" --max-new-tokens 3
[ "$CODE" -eq 0 ] || fail "the previous checkpoint does not load after a killed save"

# SIGTERM with --exit-signal-handler: a checkpoint of the iteration reached, exit 0.
"$LOOM" train "${ARGS[@]}" --train-iters 100000 --lr-decay-iters 100000 --exit-signal-handler --save "$TMP/term" \
  --log-interval 1 > "$TMP/term.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "iteration        3/" "$TMP/term.log" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid
wait $pid
code=$?
[ "$code" -eq 0 ] || fail "SIGTERM: exit $code"
grep -q "exiting program after receiving a termination signal" "$TMP/term.log" || fail "SIGTERM message"
it=$(cat "$TMP/term/latest_checkpointed_iteration.txt")
last=$(grep -oE 'iteration +[0-9]+/' "$TMP/term.log" | tail -1 | grep -oE '[0-9]+')
[ "$it" = "$last" ] || fail "SIGTERM checkpoint is iteration $it, the last logged is $last"

# Damage: each refused with one line naming the file.
cp -r "$TMP/straight" "$TMP/bad"
SHARD=$TMP/bad/iter_0000030/shard_tp00_pp000.safetensors
truncate -s -100 "$SHARD"
expect_error "checkpoint shard $SHARD has" "$LOOM" train "${ARGS[@]}" --train-iters 31 --load "$TMP/bad"
cp "$TMP/straight/iter_0000030/shard_tp00_pp000.safetensors" "$SHARD"
printf '\x01' | dd of="$SHARD" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_error "checkpoint shard $SHARD fails its CRC-32 check (corrupted)" "$LOOM" train "${ARGS[@]}" --train-iters 31 --load "$TMP/bad"
expect_error "checkpoint $TMP/straight was trained with --hidden-size 32, this run has 64" \
  "$LOOM" train "${ARGS[@]}" --hidden-size 64 --train-iters 31 --load "$TMP/straight"
echo '{"format": "loom-checkpoint", "version": 1, "tensors": ' > "$TMP/bad/iter_0000030/metadata.json"
expect_error "metadata.json: malformed checkpoint metadata" "$LOOM" train "${ARGS[@]}" --train-iters 31 --load "$TMP/bad"
finish
