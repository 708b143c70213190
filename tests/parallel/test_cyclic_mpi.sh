# --dataloader-type cyclic under mpirun: the random sampler is built over the data-parallel size, so
# tensor/sequence- and pipeline-parallel runs (one data-parallel rank) read the same order as one process
# and print its losses (within 1e-5); a data-parallel run reads another order (Megatron's per-rank buckets,
# checked index for index in parity.test_cyclic_sampler) and resumes from a checkpoint exactly.
source "$(dirname "$0")/loom_mpi_lib.sh"
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 8
      --train-iters 8 --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 2 --log-interval 1
      --eval-interval 4 --eval-iters 1 --hidden-dropout 0.1 --attention-dropout 0.1 --split 90,5,5
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES" --dataloader-type cyclic)
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
losses() { grep -oE 'lm loss: [0-9.E+-]+' "$1" | awk '{print $3}'; }
fields() { grep -oE '(iteration +[0-9]+/ +[0-9]+ \| consumed samples: +[0-9]+|learning rate: .* grad norm: [0-9.]+)' "$1"; }

"$LOOM" train "${ARGS[@]}" > "$TMP/one.log" 2>&1 || fail "one process"
"$LOOM" train "${ARGS[@]/cyclic/single}" > "$TMP/single.log" 2>&1 || fail "one process, single"
! diff -q <(losses "$TMP/one.log") <(losses "$TMP/single.log") >/dev/null || fail "cyclic read the single order"
for layout in "tp2 --tensor-model-parallel-size 2 --sequence-parallel --make-vocab-size-divisible-by 64" \
              "pp2 --pipeline-model-parallel-size 2"; do
  set -- $layout
  name=$1; shift
  "${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "$@" > "$TMP/$name.log" 2>&1 || { fail "$name exited non-zero"; tail -3 "$TMP/$name.log"; }
  paste <(losses "$TMP/one.log") <(losses "$TMP/$name.log") | awk -v n="$name" '
    { d = $1 - $2; if (d < 0) d = -d; if (d / $1 > 1e-5) { bad = 1; print n ": loss " $1 " vs " $2 } } END { exit bad || NR != 8 }' \
    || fail "$name: cyclic losses differ from one process"
done
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --save "$TMP/straight" > "$TMP/dp2.log" 2>&1 || fail "dp2"
! diff -q <(losses "$TMP/one.log") <(losses "$TMP/dp2.log") >/dev/null || fail "dp2 read the one-process order"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --exit-interval 4 --save "$TMP/split" > "$TMP/half1.log" 2>&1 || fail "dp2 first half"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" --load "$TMP/split" --save "$TMP/split" > "$TMP/half2.log" 2>&1 || fail "dp2 second half"
diff <(fields "$TMP/dp2.log") <(cat "$TMP/half1.log" "$TMP/half2.log" | fields /dev/stdin) > "$TMP/diff" \
  || { fail "dp2: the resumed cyclic run differs"; head "$TMP/diff"; }
cmp -s "$TMP/straight/iter_0000008/shard_tp00_pp000.safetensors" "$TMP/split/iter_0000008/shard_tp00_pp000.safetensors" \
  || fail "dp2: final weights differ after resuming"
[ $status -eq 0 ] && echo "cyclic loader: model-parallel layouts equal one process, dp2 resumes exactly" || echo "cyclic loader under mpirun: failures"
exit $status
