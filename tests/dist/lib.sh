# Shared helpers for the dist test scripts. Needs MPIRUN, TIMEOUT and COMM_DRIVER (set by ctest).
set -u
: "${MPIRUN:?MPIRUN must point at mpirun}"
: "${TIMEOUT:=timeout}"
: "${COMM_DRIVER:?COMM_DRIVER must point at the comm_driver binary}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILURES=0
MPI=("$MPIRUN" --allow-run-as-root --oversubscribe)

fail() {
  echo "FAIL: $*"
  echo "  stderr: $(tail -20 "$TMP/err" 2>/dev/null)"
  FAILURES=$((FAILURES + 1))
}

now() { date +%s.%N; }
elapsed_since() { echo "$(now) - $1" | bc; }
less_than() { [ "$(echo "$1 < $2" | bc)" = 1 ]; }

# run CMD...: runs with a hard 60 s limit; sets CODE and SECONDS_TAKEN, output in $TMP/out, $TMP/err.
run() {
  local t0
  t0=$(now)
  set +e
  "$TIMEOUT" -k 5 60 "$@" >"$TMP/out" 2>"$TMP/err"
  CODE=$?
  set -e
  SECONDS_TAKEN=$(elapsed_since "$t0")
}

finish() {
  if [ "$FAILURES" -ne 0 ]; then
    echo "$FAILURES failure(s)"
    exit 1
  fi
  echo "all passed"
}
