# Megatron's --apply-residual-connection-post-layernorm, --fp32-residual-connection and --dataloader-type
# cyclic in `loom train`: each changes the run (losses differ from the default); a stopped and resumed run
# equals the straight one bit for bit (the cyclic order resumes at the consumed samples); a post-norm
# checkpoint is refused by a pre-norm run naming the flag, and has no Hugging Face form; bad combinations
# are one error line, exit 2. The numerics are tested against PyTorch (parity.test_gpt_parity_post_ln), the
# sample order against Megatron's sampler (parity.test_cyclic_sampler), the layouts under mpirun
# (dist.test_residual_layouts).
set -e
source "$(dirname "$0")/lib.sh"
corpus small 40
ARGS=(--num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 3 --lr-decay-iters 12 --log-interval 1
      --eval-interval 6 --eval-iters 2 --hidden-dropout 0.1 --attention-dropout 0.1 --split 90,5,5 --seed 5
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
fields() { grep -oE '(iteration +[0-9]+/ +[0-9]+ \| consumed samples: +[0-9]+|learning rate: .* grad norm: [0-9.]+|validation loss at .*)' "$1"; }
losses() { grep -oE 'lm loss: [0-9.E+-]+' "$1"; }

for precision in "" "--bf16"; do
  run "$LOOM" train "${ARGS[@]}" --train-iters 12 $precision
  [ "$CODE" -eq 0 ] || fail "default run $precision"
  cp "$TMP/out" "$TMP/default$precision.log"
done
for flags in "--apply-residual-connection-post-layernorm" "--dataloader-type cyclic" "--bf16 --fp32-residual-connection"; do
  name=$(echo "$flags" | tr -c 'a-z0-9\n' '_')
  base="$TMP/default.log"
  case "$flags" in --bf16*) base="$TMP/default--bf16.log" ;; esac  # against the same precision without it
  run "$LOOM" train "${ARGS[@]}" --train-iters 12 $flags --save "$TMP/straight_$name"
  [ "$CODE" -eq 0 ] || fail "$flags run"
  cp "$TMP/out" "$TMP/straight_$name.log"
  ! diff -q <(losses "$base") <(losses "$TMP/out") >/dev/null || fail "$flags did not change the losses"
  run "$LOOM" train "${ARGS[@]}" --train-iters 12 $flags --exit-interval 6 --save "$TMP/split_$name"
  [ "$CODE" -eq 0 ] || fail "$flags first half"
  cp "$TMP/out" "$TMP/half1.log"
  run "$LOOM" train "${ARGS[@]}" --train-iters 12 $flags --load "$TMP/split_$name" --save "$TMP/split_$name"
  [ "$CODE" -eq 0 ] || fail "$flags second half"
  cat "$TMP/half1.log" "$TMP/out" > "$TMP/resumed.log"
  diff <(fields "$TMP/straight_$name.log" | grep -v 'on validation set\|on test set') \
       <(fields "$TMP/resumed.log" | grep -v 'on validation set\|on test set') > "$TMP/diff" \
    || { fail "$flags: the resumed run differs"; head "$TMP/diff"; }
  cmp -s "$TMP/straight_$name/iter_0000012/shard_tp00_pp000.safetensors" "$TMP/split_$name/iter_0000012/shard_tp00_pp000.safetensors" \
    || fail "$flags: final weights and optimizer state differ after resuming"
  echo "ok: $flags changes the run and resumes exactly"
done
grep -q '^  dataloader_type \.* cyclic$' "$TMP/straight___dataloader_type_cyclic.log" || fail "argument block lacks dataloader_type cyclic"
grep -q '^  apply_residual_connection_post_layernorm \.* True$' "$TMP/straight___apply_residual_connection_post_layernorm.log" \
  || fail "argument block lacks apply_residual_connection_post_layernorm True"

POST="$TMP/straight___apply_residual_connection_post_layernorm"
expect_error "checkpoint $POST was trained with --apply-residual-connection-post-layernorm 1, this run has 0" \
  "$LOOM" train "${ARGS[@]}" --train-iters 13 --load "$POST"
expect_error "--apply-residual-connection-post-layernorm): no Hugging Face form" \
  "$LOOM" convert --load "$POST" --to hf --output "$TMP/hf_post"
expect_error "it needs --fp16 or --bf16" "$LOOM" train "${ARGS[@]}" --train-iters 2 --fp32-residual-connection
expect_error "--fp32-residual-connection with --apply-residual-connection-post-layernorm is not supported" \
  "$LOOM" train "${ARGS[@]}" --train-iters 2 --fp16 --fp32-residual-connection --apply-residual-connection-post-layernorm
expect_error "--dataloader-type" "$LOOM" train "${ARGS[@]}" --train-iters 2 --dataloader-type random
finish
