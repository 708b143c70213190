# SIGTERM to a job under mpirun gets the checkpoint it asks for. Open MPI's mpirun answers SIGTERM by
# SIGKILLing the ranks about a second later, which cuts a save off; scripts/loom-mpirun turns the signal
# into SIGUSR1, which mpirun forwards without killing (see the script). Here a save takes over 3 s
# (LOOM_TEST_CHECKPOINT_DELAY_MS): SIGTERM to the launcher -> the ranks finish the iteration, commit the
# checkpoint, exit 0; the job then resumes from it.
source "$(dirname "$0")/loom_mpi_lib.sh"
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --lr 3e-3 --log-interval 1 --eval-iters 0 --split 100,0,0 --train-iters 100000 --exit-signal-handler
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
export LOOM_MPIRUN=$MPIRUN
LAUNCH=("$SRC/scripts/loom-mpirun" --allow-run-as-root --oversubscribe -np 2)

# (Not under timeout(1): the signal must reach the launcher itself; ctest's timeout guards against a hang.)
LOOM_TEST_CHECKPOINT_DELAY_MS=3500 "${LAUNCH[@]}" "$LOOM" train "${ARGS[@]}" \
  --pipeline-model-parallel-size 2 --save "$TMP/ck" > "$TMP/term.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "iteration  *3/" "$TMP/term.log" 2>/dev/null && break; sleep 0.05; done
grep -q "iteration  *3/" "$TMP/term.log" || fail "the job did not start"
kill -TERM $pid
wait $pid
code=$?
[ "$code" -eq 0 ] || { fail "SIGTERM: the job exited $code"; tail -5 "$TMP/term.log"; }
grep -q "exiting program after receiving a termination signal" "$TMP/term.log" || fail "SIGTERM: no exit message"
it=$(cat "$TMP/ck/latest_checkpointed_iteration.txt" 2>/dev/null)
last=$(grep -oE 'iteration +[0-9]+/' "$TMP/term.log" | tail -1 | grep -oE '[0-9]+')
[ -n "$it" ] && [ "$it" = "$last" ] || fail "SIGTERM: checkpoint '$it', the last logged iteration $last"
ls "$TMP/ck" | grep -q tmp && fail "SIGTERM: a temporary directory was left: $(ls "$TMP/ck")"
# It resumes from that checkpoint.
timeout -k 5 120 "${LAUNCH[@]}" "$LOOM" train "${ARGS[@]}" --pipeline-model-parallel-size 2 --train-iters $((it + 2)) \
  --load "$TMP/ck" > "$TMP/resume.log" 2>&1 || fail "resume after SIGTERM"
grep -q "successfully loaded checkpoint from $TMP/ck at iteration $it" "$TMP/resume.log" || fail "resume: not from iteration $it"
grep -q "iteration  *$((it + 2))/" "$TMP/resume.log" || fail "resume: did not train on"
exit $status
