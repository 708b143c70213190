# EVA-CLIP's parameter-group flags and DeepSpeed FusedLamb's optimizer params through `loom train`: both
# spellings accepted and shown in the argument block, log 000's optimizer section read without warnings,
# and a group flag naming no tower, a bad value or FusedLamb's own clipping refused with one line.
set -e
source "$(dirname "$0")/lib.sh"
corpus c 20
ARGS=(--num-layers 1 --hidden-size 32 --num-attention-heads 2 --seq-length 16 --micro-batch-size 2 --train-iters 1
      --lr 1e-3 --eval-iters 0 --data-path "$TMP/c_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
run "$LOOM" train "${ARGS[@]}" --visual_lr 0.0002 --text-decoder-ld 0.75 --wd 0.05 --ld 0.9
[ "$CODE" -eq 0 ] || fail "train with the group flags"
expect_line "  visual_lr ....................................... 0.0002"
expect_line "  text_decoder_ld ................................. 0.75"
expect_line "  ld .............................................. 0.9"
expect_line "  weight_decay .................................... 0.05"  # --wd is --weight-decay
expect_line "  text_lr ......................................... None"

expect_error "--vision-lr: unknown tower 'vision' (the parameter-group towers are visual, text and text-decoder)" \
  "$LOOM" train "${ARGS[@]}" --vision-lr 1e-4
expect_error "--decoder_wd: unknown tower 'decoder' (the parameter-group towers are visual, text and text-decoder)" \
  "$LOOM" train "${ARGS[@]}" --decoder_wd=0.1
expect_error "--text-ld must be within [0, 1]" "$LOOM" train "${ARGS[@]}" --text-ld 2
expect_error "--ld must be within (0, 1]" "$LOOM" train "${ARGS[@]}" --ld 0

# Log 000's optimizer section (EVA-CLIP's create_deepspeed_config): every key known.
cat > "$TMP/ds.json" <<'JSON'
{"optimizer": {"type": "LAMB", "params": {"bias_correction": true, "betas": [0.9, 0.999], "eps": 1e-08, "max_coeff": 10,
 "min_coeff": 0.01, "eps_inside_sqrt": false}}, "gradient_clipping": 5}
JSON
run "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/ds.json"
[ "$CODE" -eq 0 ] || fail "train with log 000's optimizer section"
if grep -q "unknown key" <<<"$OUT$ERR"; then fail "log 000's optimizer params warned about"; fi
expect_line "  optimizer ....................................... lamb"
echo '{"optimizer": {"type": "Lamb", "params": {"max_grad_norm": 1.0}}}' > "$TMP/clip.json"
expect_error "$TMP/clip.json: optimizer.params.max_grad_norm (FusedLamb's own clipping) is not supported: use gradient_clipping" \
  "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/clip.json"
echo '{"optimizer": {"type": "Lamb", "params": {"min_coeff": 20}}}' > "$TMP/coeff.json"
expect_error "$TMP/coeff.json: optimizer.params: min_coeff must be positive and not above max_coeff" \
  "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/coeff.json"
echo '{"optimizer": {"type": "Lamb", "params": {"eps_inside_sqrt": 1}}}' > "$TMP/eps.json"
expect_error "$TMP/eps.json: optimizer.params.eps_inside_sqrt must be true or false" \
  "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/eps.json"
finish
