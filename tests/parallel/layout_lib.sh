# Shared by the layout-equivalence scripts: environment, a temp dir, and `run NAME NP FLAGS...`, which runs
# gpt_layout_driver under mpirun (bounded by a timeout) into $TMP/NAME.st and prints its summary line.
set -u
: "${MPIRUN:?}" "${LAYOUT_DRIVER:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
HERE=$(dirname "${BASH_SOURCE[0]}")
status=0
LAYOUT_EXTRA=()  # flags every run gets (e.g. --layers 8)
run() {  # name np flags...
  local name=$1 np=$2
  shift 2
  if ! timeout -k 5 180 "$MPIRUN" --allow-run-as-root --oversubscribe -np "$np" "$LAYOUT_DRIVER" "${LAYOUT_EXTRA[@]}" "$@" \
      --out "$TMP/$name.st" >"$TMP/$name.log" 2>&1; then
    echo "FAIL: $name exited non-zero"; tail -5 "$TMP/$name.log"; status=1
  fi
  grep layout "$TMP/$name.log"
}
