# Mixed precision: fp16 and bf16 (half-precision weights and activations, fp32 main weights) track the
# fp32 loss curve within 2% over 200 iterations; an fp16 run starting at a 2^32 loss scale skips
# iterations with the scale halving (hysteresis 2) and the learning rate held at 0, as reference log 002
# shows, then trains; a stopped and resumed fp16 run equals the straight one (scaler and main weights).
set -e
source "$(dirname "$0")/lib.sh"
corpus c 200
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --micro-batch-size 4 --global-batch-size 8
      --lr 2e-3 --min-lr 2e-4 --lr-decay-style cosine --lr-warmup-iters 10 --log-interval 1 --eval-iters 0
      --hidden-dropout 0 --attention-dropout 0 --data-path "$TMP/c_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
losses() { grep -oE 'lm loss: [0-9.E+-]+' "$1" | awk '{print $3}'; }

activations() { grep -oE '^\[Rank 0\] activations \(MB\) \| micro-batches in flight: 1 \| total: [0-9.]+$' "$1" | awk '{print $NF}'; }

run "$LOOM" train "${ARGS[@]}" --train-iters 200
cp "$TMP/out" "$TMP/fp32.log"
for p in "--bf16" "--fp16 --initial-loss-scale 4096"; do
  run "$LOOM" train "${ARGS[@]}" --train-iters 200 $p
  [ "$CODE" -eq 0 ] || fail "$p run"
  # The curve is compared as 10-iteration means (one batch's loss is noisy: a single iteration may move a
  # few percent either way); single iterations must stay within 5%.
  paste <(losses "$TMP/fp32.log") <(losses "$TMP/out") | awk -v p="$p" '
    { n++; a[n] = $1; b[n] = $2; d = ($2 - $1) / $1; if (d < 0) d = -d; if (d > worst1) worst1 = d }
    END {
      for (i = 1; i + 9 <= n; i++) {
        sa = 0; sb = 0; for (k = i; k < i + 10; k++) { sa += a[k]; sb += b[k] }
        d = (sb - sa) / sa; if (d < 0) d = -d; if (d > worst) worst = d
      }
      printf "%s: over %d iterations, worst relative difference to fp32 of 10-iteration means %.4f, of single iterations %.4f\n", p, n, worst, worst1
      exit !(n == 200 && worst < 0.02 && worst1 < 0.05) }' \
    || fail "$p does not track fp32 within 2%"
done

# Activations are stored in 2 bytes: the activation line of a 12-layer model drops by what its blocks keep.
# The output layer's fp32 logit chunk (512 rows x 50304 = 98.25 MB) is the same in both and left out; one
# fp32 block working set stays (the per-micro-batch halving is measured exactly in the unit tests).
DEEP=("${ARGS[@]}" --num-layers 12 --hidden-size 128 --seq-length 128 --train-iters 1 --lr-warmup-iters 0)
run "$LOOM" train "${DEEP[@]}"
cp "$TMP/out" "$TMP/deep32.log"
run "$LOOM" train "${DEEP[@]}" --bf16
a32=$(activations "$TMP/deep32.log"); a16=$(activations "$TMP/out")
echo "12 layers: activations bf16 $a16 MB vs fp32 $a32 MB (98.25 MB of logit chunk in each)"
awk -v a="$a16" -v b="$a32" 'BEGIN { exit !(a > 98.25 && a - 98.25 < 0.7 * (b - 98.25)) }' \
  || fail "bf16 activation memory: $a16 vs $a32 MB"

# fp16 from 2^32: skips first.
run "$LOOM" train "${ARGS[@]}" --train-iters 30 --fp16
grep -q "using float16 for parameters ..." <<<"$OUT" || fail "precision line"
line1=$(grep -E 'iteration +1/' <<<"$OUT")
line2=$(grep -E 'iteration +2/' <<<"$OUT")
grep -q 'learning rate: 0.000000E+00 | global batch size:     8 | loss scale: 4294967296.0 | number of skipped iterations:   1 | number of nan iterations:   0 |$' <<<"$line1" \
  || fail "iteration 1: skipped at 2^32 with lr 0, no loss or grad norm: $line1"
grep -q 'loss scale: 2147483648.0 | number of skipped iterations:   1' <<<"$line2" || fail "iteration 2 halves: $line2"
grep -qE 'iteration +30/.*lm loss: .* number of skipped iterations:   0' <<<"$OUT" || fail "training does not proceed"
# Megatron's fp16 timer line (log 002): clip and copy-main-to-model only once iterations are not skipped.
T='[0-9.]+'
grep -qE "^time \(ms\) \| forward-compute: $T \| backward-compute: $T \| optimizer-unscale-and-check-inf: $T \| optimizer: $T \| batch-generator: $T$" <<<"$OUT" \
  || fail "timer line of a skipped iteration"
grep -qE "^time \(ms\) \| forward-compute: $T \| backward-compute: $T \| optimizer-unscale-and-check-inf: $T \| optimizer-clip-main-grad: $T \| optimizer-copy-main-to-model-params: $T \| optimizer: $T \| batch-generator: $T$" <<<"$OUT" \
  || fail "timer line of an update"

# Exact resume in fp16.
run "$LOOM" train "${ARGS[@]}" --train-iters 30 --fp16 --save "$TMP/a"
cp "$TMP/out" "$TMP/straight.log"
run "$LOOM" train "${ARGS[@]}" --train-iters 30 --fp16 --save "$TMP/b" --exit-interval 20
cp "$TMP/out" "$TMP/half.log"
run "$LOOM" train "${ARGS[@]}" --train-iters 30 --fp16 --save "$TMP/b" --load "$TMP/b"
f() { grep -oE 'iteration +[0-9]+/.*' "$1" | sed -E 's/elapsed time.*learning rate/learning rate/'; }
diff <(f "$TMP/straight.log") <(cat "$TMP/half.log" "$TMP/out" | f /dev/stdin) >/dev/null || fail "fp16 resume differs"
cmp -s "$TMP/a/iter_0000030/shard_tp00_pp000.safetensors" "$TMP/b/iter_0000030/shard_tp00_pp000.safetensors" \
  || fail "fp16 resume: final state differs"
finish
