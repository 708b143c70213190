# `loom train --pipeline-schedule zero-bubble` end to end under mpirun: a PP2 run stopped and resumed under
# the zero-bubble schedule, with a straggler injected, logs the same steps and writes the same final
# checkpoint bytes as the straight 1F1B run, and so do --fp16 and --bf16 runs; its trace has W passes; the combinations it does not run
# are one `loom: error:` line and exit 2.
source "$(dirname "$0")/loom_mpi_lib.sh"
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 1 --global-batch-size 8
      --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 2 --lr-decay-iters 6 --log-interval 1
      --eval-interval 3 --eval-iters 1 --split 90,5,5 --train-iters 6 --pipeline-model-parallel-size 2
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
ZB=(--pipeline-schedule zero-bubble)
steps() { grep -oE 'iteration +[0-9]+/.*grad norm: [0-9.]+' "$1" | sed -E 's/elapsed time per iteration \(ms\): [0-9.]+ \| throughput per GPU \(TFLOP\/s\/GPU\): [0-9.]+ \| tokens per second per GPU: [0-9.]+ \| //'; }
# Every iteration line without its timings (fp16's first iterations skip their step: no grad norm).
iters() { grep -E ' iteration +[0-9]+/' "$1" | sed -E 's/^.*( iteration +[0-9]+\/)/\1/; s/elapsed time per iteration \(ms\): [0-9.]+ \| throughput per GPU \(TFLOP\/s\/GPU\): [0-9.]+ \| tokens per second per GPU: [0-9.]+ \| //'; }
evals() { grep -oE 'validation loss at iteration [0-9]+( on [a-z]+ set)? \| lm loss value: [0-9.E+-]+' "$1"; }

"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --save "$TMP/fixed" > "$TMP/fixed.log" 2>&1 || fail "1F1B run"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --pipeline-schedule zero-bubble --save "$TMP/zb" --exit-interval 3 \
  > "$TMP/a.log" 2>&1 || fail "zero-bubble first half"
LOOM_PIPELINE_DELAY="stage=1,prob=0.4,ms=2" "${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --pipeline-schedule zero-bubble \
  --save "$TMP/zb" --load "$TMP/zb" --pipeline-trace "$TMP/trace.json" > "$TMP/b.log" 2>&1 || fail "zero-bubble second half"
[ "$(steps "$TMP/fixed.log" | wc -l)" = 6 ] || fail "expected 6 logged steps"
diff <(steps "$TMP/fixed.log") <(cat "$TMP/a.log" "$TMP/b.log" | steps /dev/stdin) > "$TMP/diff" \
  || { fail "zero-bubble, resumed, differs from 1F1B"; head -5 "$TMP/diff"; }
[ "$(evals "$TMP/fixed.log" | wc -l)" -ge 2 ] || fail "expected validation lines"
diff <(evals "$TMP/fixed.log") <(cat "$TMP/a.log" "$TMP/b.log" | evals /dev/stdin) \
  || fail "validation losses differ"
for f in shard_tp00_pp000 shard_tp00_pp001; do
  cmp -s "$TMP/fixed/iter_0000006/$f.safetensors" "$TMP/zb/iter_0000006/$f.safetensors" || fail "final $f differs"
done
# Half precision: --fp16 (dynamic loss scale, fp16 gradients) and --bf16 (bf16 GEMMs) log the same steps and
# write the same checkpoint bytes as their 1F1B runs.
for prec in fp16 bf16; do
  P=(--$prec)
  [ $prec = fp16 ] && P+=(--initial-loss-scale 1024)  # steps taken from the first iteration (and their grad norms)
  "${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "${P[@]}" --save "$TMP/${prec}_1f1b" > "$TMP/${prec}_1f1b.log" 2>&1 \
    || fail "$prec 1F1B run"
  LOOM_PIPELINE_DELAY="stage=0,prob=0.4,ms=2" "${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "${P[@]}" "${ZB[@]}" \
    --save "$TMP/${prec}_zb" > "$TMP/${prec}_zb.log" 2>&1 || fail "$prec zero-bubble run"
  [ "$(steps "$TMP/${prec}_1f1b.log" | wc -l)" = 6 ] || fail "$prec: expected 6 logged steps with their grad norms"
  diff <(iters "$TMP/${prec}_1f1b.log") <(iters "$TMP/${prec}_zb.log") > "$TMP/diff" \
    || { fail "$prec zero-bubble differs from 1F1B"; head -5 "$TMP/diff"; }
  for f in shard_tp00_pp000 shard_tp00_pp001; do
    cmp -s "$TMP/${prec}_1f1b/iter_0000006/$f.safetensors" "$TMP/${prec}_zb/iter_0000006/$f.safetensors" \
      || fail "$prec: final $f differs"
  done
done
grep -qE '^ > pipeline idle fraction per stage \(of each training step after the first\): 0: 0\.[0-9]{3} 1: 0\.[0-9]{3}$' \
  "$TMP/b.log" || fail "no idle fraction line"
# The printed fractions are of the step (the longest stage's span), as bench/pipeline_bubble.py reads them
# from the trace's passes.
/usr/bin/python3 "$SRC/bench/pipeline_bubble.py" "$TMP/trace.json" 2 8 1 > "$TMP/bubble" || fail "pipeline_bubble.py"
for s in 0 1; do
  printed=$(grep -oE "^ > pipeline idle fraction per stage .*" "$TMP/b.log" | grep -oE " $s: 0\.[0-9]{3}" | cut -d' ' -f3)
  traced=$(grep -oE "^stage $s: idle 0\.[0-9]{3} of each step" "$TMP/bubble" | cut -d' ' -f4)
  awk -v a="$printed" -v b="$traced" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d < 0.03 && d > -0.03) }' \
    || fail "stage $s: printed idle $printed, the trace's $traced"
done
# Each stage ran 8 W passes per iteration, in micro-batch order, after their B.
for s in 0 1; do
  n=$(grep -oE "\"name\": \"W[0-9]+\\.0\", \"ph\": \"X\", \"pid\": $s," "$TMP/trace.json" | wc -l)
  [ "$n" = 24 ] || fail "stage $s: $n W passes in the trace, expected 3 iterations x 8"
done

bad() {  # expected-message np args...
  local msg=$1 np=$2
  shift 2
  "${MPI[@]}" -np "$np" "$LOOM" train "$@" > "$TMP/bad.log" 2> "$TMP/bad.err"
  local code=$?
  [ "$code" -eq 2 ] || fail "'$msg': exit $code, expected 2"
  [ "$(grep -c '^loom: error: ' "$TMP/bad.err")" -eq 1 ] && grep -qxF "loom: error: $msg" "$TMP/bad.err" \
    || { fail "expected the one line '$msg'"; cat "$TMP/bad.err"; }
}
bad "--pipeline-schedule zero-bubble needs --pipeline-model-parallel-size > 1" 1 "${ARGS[@]}" "${ZB[@]}" \
  --pipeline-model-parallel-size 1
bad "--pipeline-schedule zero-bubble cannot be combined with activation recompute" 2 "${ARGS[@]}" "${ZB[@]}" \
  --recompute-granularity full --recompute-method uniform
bad "--pipeline-schedule zero-bubble cannot be combined with activation recompute" 2 "${ARGS[@]}" "${ZB[@]}" \
  --recompute-activations
bad "--pipeline-schedule zero-bubble cannot be combined with ZeRO-2/3 (--zero-stage 2)" 4 "${ARGS[@]}" "${ZB[@]}" \
  --zero-stage 2
bad "virtual pipeline stages run only with the interleaved or dynamic schedule" 2 "${ARGS[@]}" "${ZB[@]}" \
  --num-layers 4 --num-layers-per-virtual-pipeline-stage 1
bad "--pipeline-max-in-flight needs --pipeline-schedule dynamic" 2 "${ARGS[@]}" "${ZB[@]}" --pipeline-max-in-flight 2
[ $status -eq 0 ] && echo "all checks passed"
exit $status
