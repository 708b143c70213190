# check_same_across_ranks: rank 2's flag list differs; every rank fails with one line naming rank 2.
set -e
source "$(dirname "$0")/lib.sh"

run "${MPI[@]}" -np 4 "$COMM_DRIVER" mismatch
if [ "$CODE" -eq 0 ]; then fail "expected a non-zero exit"; fi
expected="loom: error: the flag list differs across ranks: rank 2 has '...ers 2 --hidden-size 128 --lr 0.001' where rank 0 has '...ers 2 --hidden-size 64 --lr 0.001' (first difference at character 29)"
n=$(grep -cxF -- "$expected" "$TMP/err" || true)
if [ "$n" -ne 4 ]; then fail "expected the mismatch line from all 4 ranks, got $n"; fi
if ! less_than "$SECONDS_TAKEN" 15; then fail "took $SECONDS_TAKEN s"; fi
finish
