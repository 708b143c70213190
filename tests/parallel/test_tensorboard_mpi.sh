# TensorBoard under mpirun, pipeline-parallel (2 stages) and data-parallel x pipeline (2 x 2): only the
# last rank writes an event file (it holds the loss, as Megatron's get_tensorboard_writer), the other ranks
# none, and every scalar equals the log lines the last rank prints.
source "$(dirname "$0")/loom_mpi_lib.sh"
HERE=$(cd "$(dirname "$0")/../cli" && pwd)
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 1 --global-batch-size 4
      --train-iters 8 --lr 1e-3 --lr-warmup-iters 2 --log-interval 1 --eval-interval 4 --eval-iters 1 --split 80,10,10
      --fp16 --initial-loss-scale 1048576 --hysteresis 1 --pipeline-model-parallel-size 2
      --log-timers-to-tensorboard --log-batch-size-to-tensorboard --log-validation-ppl-to-tensorboard
      --log-memory-to-tensorboard --log-world-size-to-tensorboard
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
for np in 2 4; do
  "${MPI[@]}" -np $np "$LOOM" train "${ARGS[@]}" --tensorboard-dir "$TMP/tb$np" > "$TMP/np$np.log" 2>"$TMP/np$np.err" \
    || { fail "np $np exited non-zero"; cat "$TMP/np$np.err"; }
  n=$(ls "$TMP/tb$np" | grep -c '^events\.out\.tfevents\.')
  [ "$n" -eq 1 ] || fail "np $np: expected one event file, got $n"
  (cd "$HERE" && /usr/bin/python3 tensorboard_vs_log.py "$TMP/np$np.log" "$TMP/tb$np" --world $np) \
    || fail "np $np: event file against the log"
done
[ $status -eq 0 ] && echo "all checks passed"
exit $status
