# Megatron's batch-size ramp-up under mpirun (fp32): the micro-batch count changes from iteration to
# iteration (8 samples on micro-batches of 1: 2, 4, 6, then 8 per iteration). One process, data-parallel 2
# (1 to 4 micro-batches per rank), and pipeline-parallel 2 under 1F1B, the dynamic schedule and the
# interleaved schedule (2 virtual stages) log the same batches and consumed samples, and losses within 1e-5
# of one process; the three pipeline schedules give the same steps and final checkpoint bytes; a PP2 run
# resumed mid-ramp under the dynamic schedule writes the bytes of the straight 1F1B run.
source "$(dirname "$0")/loom_mpi_lib.sh"
ARGS=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 1 --global-batch-size 8
      --rampup-batch-size 2 2 24 --train-samples 64 --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine
      --lr-warmup-samples 8 --log-interval 1 --eval-interval 100 --eval-iters 1 --split 90,5,5 --hidden-dropout 0.1
      --attention-dropout 0.1 --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
batches() { grep -oE 'consumed samples: +[0-9]+ \|.*global batch size: +[0-9]+' "$1" | sed -E 's/elapsed.*learning rate/learning rate/'; }
steps() { grep -oE 'consumed samples: +[0-9]+ \|.*grad norm: [0-9.]+' "$1" | sed -E 's/elapsed.*learning rate/learning rate/'; }
losses() { grep -oE 'lm loss: [0-9.E+-]+' "$1" | awk '{print $3}'; }

"$LOOM" train "${ARGS[@]}" > "$TMP/one.log" 2>&1 || fail "one process"
n=$(batches "$TMP/one.log" | wc -l)
[ "$n" -eq 12 ] || fail "one process: expected 12 iterations (8 in the ramp, then (64 - 28) // 8 = 4), got $n"
batches "$TMP/one.log" | grep -oE 'global batch size: +[0-9]+' | awk '{print $4}' | tr '\n' ' ' > "$TMP/gbs"
[ "$(cat "$TMP/gbs")" = "2 2 2 2 4 4 6 6 8 8 8 8 " ] || fail "one process: batches $(cat "$TMP/gbs")"

run_layout() {  # name np extra...
  local name=$1 np=$2
  shift 2
  "${MPI[@]}" -np "$np" "$LOOM" train "${ARGS[@]}" "$@" > "$TMP/$name.log" 2>&1 || { fail "$name exited non-zero"; tail -3 "$TMP/$name.log"; }
  diff <(batches "$TMP/one.log") <(batches "$TMP/$name.log") > /dev/null || fail "$name: batches or consumed samples differ"
  paste <(losses "$TMP/one.log") <(losses "$TMP/$name.log") | awk -v n="$name" '
    { d = $1 - $2; if (d < 0) d = -d; if (d / $1 > 1e-5) { bad = 1; print n ": loss " $1 " vs " $2 } }
    END { exit bad || NR != 12 }' || fail "$name: losses differ from one process"
}
run_layout dp2 2
run_layout pp2_1f1b 2 --pipeline-model-parallel-size 2 --save "$TMP/fixed"
run_layout pp2_dynamic 2 --pipeline-model-parallel-size 2 --pipeline-schedule dynamic
run_layout pp2_interleaved 2 --pipeline-model-parallel-size 2 --virtual-pipeline-model-parallel-size 2 \
  --pipeline-schedule interleaved
for s in pp2_dynamic pp2_interleaved; do
  diff <(steps "$TMP/pp2_1f1b.log") <(steps "$TMP/$s.log") > /dev/null || fail "$s: steps differ from 1F1B"
done

# Resume mid-ramp (after iteration 6, in the batch-6 phase) under the dynamic schedule: the 1F1B bytes.
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --pipeline-model-parallel-size 2 --pipeline-schedule dynamic \
  --exit-interval 6 --save "$TMP/dyn" > "$TMP/a.log" 2>&1 || fail "dynamic first part"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --pipeline-model-parallel-size 2 --pipeline-schedule dynamic \
  --load "$TMP/dyn" --save "$TMP/dyn" > "$TMP/b.log" 2>&1 || fail "dynamic resumed part"
diff <(steps "$TMP/pp2_1f1b.log") <(cat "$TMP/a.log" "$TMP/b.log" | steps /dev/stdin) > "$TMP/diff" \
  || { fail "dynamic, resumed mid-ramp, differs from 1F1B"; head -4 "$TMP/diff"; }
for f in shard_tp00_pp000 shard_tp00_pp001; do
  cmp -s "$TMP/fixed/iter_0000012/$f.safetensors" "$TMP/dyn/iter_0000012/$f.safetensors" || fail "final $f differs"
done

# The interleaved schedule needs every micro-batch count of the ramp to be a multiple of the stages.
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --rampup-batch-size 1 1 24 --pipeline-model-parallel-size 2 \
  --virtual-pipeline-model-parallel-size 2 --pipeline-schedule interleaved > "$TMP/bad.log" 2>"$TMP/bad.err"
code=$?
[ "$code" -eq 2 ] || fail "interleaved with an odd micro-batch count: exit $code, expected 2"
grep -q "loom: error: the interleaved schedule needs the number of micro-batches to be a multiple of --pipeline-model-parallel-size: the global batch size 1 at iteration 1 gives 1 micro-batches, not a multiple of 2" \
  "$TMP/bad.err" || { fail "interleaved with an odd micro-batch count: message"; cat "$TMP/bad.err"; }
[ "$status" -eq 0 ] && echo "all checks passed"
exit $status
