# A rank that never joins a collective: every other rank prints the one-line timeout error, naming the rank
# that stopped answering, and the job ends non-zero within the timeout (plus start-up, the 2 s roll call
# and tear-down), never hangs.
set -e
source "$(dirname "$0")/lib.sh"

check_timeout_lines() {  # check_timeout_lines EXPECTED_COUNT OP_PATTERN [CAUSE]
  local n cause=${3:-a peer process may have died}
  n=$(grep -c "^loom: error: rank [0-9]*: $2 on group 'world' (size [0-9]*) timed out after 2 s waiting for peers; $cause$" "$TMP/err" || true)
  if [ "$n" -lt "$1" ]; then fail "expected $1 timeout line(s) for '$2', got $n"; fi
}

# np 4: rank 3 sleeps instead of joining the all_reduce.
LOOM_COMM_TIMEOUT=2 run "${MPI[@]}" -np 4 "$COMM_DRIVER" timeout
if [ "$CODE" -eq 0 ]; then fail "np 4: expected a non-zero exit"; fi
if [ "$CODE" -eq 124 ] || [ "$CODE" -eq 137 ]; then fail "np 4: hung until the outer timeout"; fi
if ! less_than "$SECONDS_TAKEN" 15; then fail "np 4: took $SECONDS_TAKEN s"; fi
# At least one survivor reports (MPI_Abort from the first one may kill the others before they print).
# The line names the rank that stopped answering, not only the one reporting.
check_timeout_lines 1 'all_reduce (1 x f32, sum)' 'rank 3 stopped answering (stopped, stuck outside MPI, or dead)'
if grep -q "^loom: error: rank 3:" "$TMP/err"; then fail "np 4: the rank that never joined should not report a timeout"; fi
if grep -q "comm_driver: FAIL" "$TMP/err"; then fail "np 4: driver reported a failure"; fi
echo "np 4 timeout: exit $CODE after $SECONDS_TAKEN s"

# Singleton (no mpirun): a recv nobody sends.
LOOM_COMM_TIMEOUT=2 run "$COMM_DRIVER" self-timeout
if [ "$CODE" -eq 0 ] || [ "$CODE" -eq 124 ] || [ "$CODE" -eq 137 ]; then fail "singleton: expected exit 1, got $CODE"; fi
if ! less_than "$SECONDS_TAKEN" 10; then fail "singleton: took $SECONDS_TAKEN s"; fi
check_timeout_lines 1 'recv (1 x f32 from rank 0, tag 99)'
echo "singleton timeout: exit $CODE after $SECONDS_TAKEN s"

# A malformed timeout is refused at start-up with one line.
LOOM_COMM_TIMEOUT=soon run "$COMM_DRIVER" collectives
if [ "$CODE" -ne 2 ] || ! grep -q "^loom: error: LOOM_COMM_TIMEOUT must be a positive number of seconds, got 'soon'$" "$TMP/err"; then
  fail "malformed LOOM_COMM_TIMEOUT: exit $CODE"
fi

finish
