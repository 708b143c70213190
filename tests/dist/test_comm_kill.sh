# A rank dies (kill -9) or stops (SIGSTOP) in the middle of a loop of all_reduces. The whole job must end
# non-zero within a deadline, with stderr naming the lost rank, and leave no rank behind.
#   kill -9: mpirun (Open MPI 4.1) notices the death and tears the job down, printing
#            "mpirun noticed that process rank 2 with PID 0 on node ... exited on signal 9 (Killed)."
#   SIGSTOP: nothing notices; the survivors' own deadline (LOOM_COMM_TIMEOUT) ends the job.
set -e
source "$(dirname "$0")/lib.sh"

VICTIM=2

start_loop() {  # start the job in the background; sets JOB and PIDS (rank -> pid)
  # The previous job's output goes first: the background job truncates it only once it runs, and a
  # "ready" still there would be taken for this job's.
  rm -f "$TMP/out" "$TMP/err"
  "$TIMEOUT" -k 5 60 "${MPI[@]}" -np 4 "$COMM_DRIVER" loop 40 >"$TMP/out" 2>"$TMP/err" &
  JOB=$!
  for _ in $(seq 200); do
    if grep -q "^ready$" "$TMP/out" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! grep -q "^ready$" "$TMP/out"; then fail "the job did not start"; return 1; fi
  PIDS=()
  for r in 0 1 2 3; do PIDS[$r]=$(sed -n "s/^rank $r pid \([0-9]*\)$/\1/p" "$TMP/err"); done
  sleep 0.5  # well into the loop
}

wait_job() {  # sets CODE and SECONDS_TAKEN (since now)
  local t0
  t0=$(now)
  set +e
  wait "$JOB"
  CODE=$?
  set -e
  SECONDS_TAKEN=$(elapsed_since "$t0")
}

alive() {  # alive PID: running or stopped, not gone and not a zombie
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

no_rank_left() {  # every rank gone (or a zombie) within 3 s of the job's end
  for r in 0 1 2 3; do
    for _ in $(seq 30); do
      if ! alive "${PIDS[$r]}"; then break; fi
      sleep 0.1
    done
    if alive "${PIDS[$r]}"; then
      fail "rank $r (pid ${PIDS[$r]}) is still running: $(cat /proc/${PIDS[$r]}/stat 2>/dev/null)"
      kill -9 "${PIDS[$r]}" 2>/dev/null || true
    fi
  done
}

# 1. kill -9
export LOOM_COMM_TIMEOUT=10
if start_loop; then
  kill -9 "${PIDS[$VICTIM]}"
  wait_job
  echo "kill -9 rank $VICTIM: job exit $CODE after $SECONDS_TAKEN s"
  if [ "$CODE" -eq 0 ]; then fail "kill -9: expected a non-zero exit"; fi
  if [ "$CODE" -eq 124 ]; then fail "kill -9: hung until the outer timeout"; fi
  if ! less_than "$SECONDS_TAKEN" 12; then fail "kill -9: took $SECONDS_TAKEN s"; fi
  if ! grep -Eq "process rank $VICTIM .*exited on signal 9|^loom: error: rank [0-9]+: .*timed out" "$TMP/err"; then
    fail "kill -9: stderr does not name the lost rank"
  fi
  if grep -q "comm_driver: FAIL" "$TMP/err"; then fail "kill -9: a survivor finished its loop"; fi
  no_rank_left
fi

# 2. SIGSTOP: a stuck peer, invisible to mpirun.
export LOOM_COMM_TIMEOUT=3
if start_loop; then
  kill -STOP "${PIDS[$VICTIM]}"
  wait_job
  echo "SIGSTOP rank $VICTIM: job exit $CODE after $SECONDS_TAKEN s"
  if [ "$CODE" -eq 0 ]; then fail "SIGSTOP: expected a non-zero exit"; fi
  if [ "$CODE" -eq 124 ]; then fail "SIGSTOP: hung until the outer timeout"; fi
  if ! less_than "$SECONDS_TAKEN" 12; then fail "SIGSTOP: took $SECONDS_TAKEN s"; fi
  if ! grep -Eq "^loom: error: rank [0-9]+: all_reduce \(1024 x f32, sum\) on group 'world' \(size 4\) timed out after 3 s waiting for peers; rank $VICTIM stopped answering \(stopped, stuck outside MPI, or dead\)$" "$TMP/err"; then
    fail "SIGSTOP: no timeout line"
  fi
  kill -CONT "${PIDS[$VICTIM]}" 2>/dev/null || true
  no_rank_left
fi

finish
