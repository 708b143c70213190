# `loom train --pipeline-schedule dynamic` (and its MegatronDPP alias --use-dpp) end to end under mpirun:
# a PP2 run stopped and resumed under the dynamic schedule, with a straggler injected, logs the same steps
# and writes the same final checkpoint bytes as the straight 1F1B run; --pipeline-trace reports each
# stage's idle fraction; the cost split over virtual stages; bad input is one `loom: error:` line and
# exit 2.
source "$(dirname "$0")/loom_mpi_lib.sh"
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 1 --global-batch-size 8
      --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 2 --lr-decay-iters 6 --log-interval 1
      --eval-interval 100 --eval-iters 1 --split 90,5,5 --train-iters 6 --pipeline-model-parallel-size 2
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
steps() { grep -oE 'iteration +[0-9]+/.*grad norm: [0-9.]+' "$1" | sed -E 's/elapsed time per iteration \(ms\): [0-9.]+ \| throughput per GPU \(TFLOP\/s\/GPU\): [0-9.]+ \| tokens per second per GPU: [0-9.]+ \| //'; }

"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --save "$TMP/fixed" > "$TMP/fixed.log" 2>&1 || fail "1F1B run"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --use-dpp --save "$TMP/dyn" --exit-interval 3 > "$TMP/a.log" 2>&1 \
  || fail "dynamic first half"
LOOM_PIPELINE_DELAY="stage=0,prob=0.4,ms=2" "${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --pipeline-schedule dynamic \
  --save "$TMP/dyn" --load "$TMP/dyn" --pipeline-trace "$TMP/trace.json" > "$TMP/b.log" 2>&1 || fail "dynamic second half"
[ "$(steps "$TMP/fixed.log" | wc -l)" = 6 ] || fail "expected 6 logged steps"
diff <(steps "$TMP/fixed.log") <(cat "$TMP/a.log" "$TMP/b.log" | steps /dev/stdin) > "$TMP/diff" \
  || { fail "dynamic, resumed, differs from 1F1B"; head -5 "$TMP/diff"; }
for f in shard_tp00_pp000 shard_tp00_pp001; do
  cmp -s "$TMP/fixed/iter_0000006/$f.safetensors" "$TMP/dyn/iter_0000006/$f.safetensors" || fail "final $f differs"
done
grep -qE '^ > pipeline idle fraction per stage \(of each training step after the first\): 0: 0\.[0-9]{3} 1: 0\.[0-9]{3}$' \
  "$TMP/b.log" || fail "no idle fraction line"

# --pipeline-split cost over 2 virtual stages (6 blocks over 4 virtual stages, which no even split
# divides) under the dynamic schedule trains the same model, to the digit, as the cost split without
# virtual stages under 1F1B.
V2=(--num-layers 6 --train-iters 3 --lr-decay-iters 3 --pipeline-split cost)
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "${V2[@]}" > "$TMP/v1_cost.log" 2>&1 || fail "1F1B, cost split"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "${V2[@]}" --virtual-pipeline-model-parallel-size 2 --use-dpp \
  > "$TMP/v2_cost.log" 2>&1 || fail "dynamic, cost split over virtual stages"
grep -oE 'blocks per stage \[virtual stages: [0-9, ]+\]' "$TMP/v2_cost.log" | grep -oE '[0-9]+' | awk '{ n++; s += $1 }
  END { exit !(n == 4 && s == 6) }' || fail "expected a split of 6 blocks over 4 virtual stages"
[ "$(steps "$TMP/v1_cost.log" | wc -l)" = 3 ] || fail "expected 3 logged steps"
diff <(steps "$TMP/v1_cost.log") <(steps "$TMP/v2_cost.log") > "$TMP/diff" || { fail "cost split over virtual stages differs"; head -4 "$TMP/diff"; }

bad() {  # expected-message np args...
  local msg=$1 np=$2
  shift 2
  "${MPI[@]}" -np "$np" "$LOOM" train "$@" > "$TMP/bad.log" 2> "$TMP/bad.err"
  local code=$?
  [ "$code" -eq 2 ] || fail "'$msg': exit $code, expected 2"
  # (mpirun adds its own lines about the exit code)
  [ "$(grep -c '^loom: error: ' "$TMP/bad.err")" -eq 1 ] && grep -qxF "loom: error: $msg" "$TMP/bad.err" \
    || { fail "expected the one line '$msg'"; cat "$TMP/bad.err"; }
}
bad "--pipeline-max-in-flight must be positive" 2 "${ARGS[@]}" --pipeline-schedule dynamic --pipeline-max-in-flight 0
bad "--pipeline-max-in-flight needs --pipeline-schedule dynamic" 2 "${ARGS[@]}" --pipeline-max-in-flight 2
bad "--pipeline-schedule dynamic needs --pipeline-model-parallel-size > 1" 1 "${ARGS[@]}" \
  --pipeline-model-parallel-size 1 --pipeline-schedule dynamic
bad "--use-dpp is --pipeline-schedule dynamic, not 1f1b" 2 "${ARGS[@]}" --use-dpp --pipeline-schedule 1f1b
LOOM_PIPELINE_DELAY="stage=1,prob=2,ms=5" bad "LOOM_PIPELINE_DELAY: prob=2 is not in [0, 1]" 2 "${ARGS[@]}" --use-dpp
LOOM_PIPELINE_DELAY="stage=1,prob=0.5" bad "LOOM_PIPELINE_DELAY: give one of ms= and frac=" 2 "${ARGS[@]}" --use-dpp
[ $status -eq 0 ] && echo "all checks passed"
exit $status
