# CoCa under mpirun: data-parallel 2 and 4, ZeRO-1 and ZeRO-2, full recompute and LAMB train exactly as one
# process on the whole batch (the contrastive loss gathers every rank's features with their gradients);
# fp16 storage with loss scaling tracks fp32.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
DRIVER="$(dirname "$LAYOUT_DRIVER")/coca_dp_driver"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
status=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
run() {  # run NAME NP ARGS...
  local name=$1 np=$2
  shift 2
  if ! "$MPIRUN" --oversubscribe -np "$np" "$DRIVER" --iters 4 --out "$TMP/$name.st" "$@" >"$TMP/$name.log" 2>&1; then
    echo "FAIL: $name exited non-zero"; cat "$TMP/$name.log"; status=1
  fi
}
run one 1
run dp2 2
run dp4 4
run z1_dp2 2 --zero 1
run z2_dp4 4 --zero 2
run recompute_dp2 2 --recompute 1
/usr/bin/python3 "$HERE/compare_coca.py" 1e-5 0.01 "$TMP/one.st" "$TMP"/dp*.st "$TMP"/z*.st "$TMP"/recompute*.st || status=1
run lamb_one 1 --lamb 1
run lamb_z1_dp4 4 --lamb 1 --zero 1
/usr/bin/python3 "$HERE/compare_coca.py" 1e-5 0.01 "$TMP/lamb_one.st" "$TMP/lamb_z1_dp4.st" || status=1
# fp16 weights (fp32 main weights, dynamic loss scale) against fp32: the losses within 2%.
run fp16_z1_dp2 2 --zero 1 --precision fp16
/usr/bin/python3 - "$TMP/one.st" "$TMP/fp16_z1_dp2.st" <<'PY' || status=1
import sys, os
sys.path.insert(0, os.path.join(os.environ["LOOM_SOURCE_DIR"], "tests", "parity"))
import numpy as np
from safetensors_np import load_file
a, b = load_file(sys.argv[1])["loss"], load_file(sys.argv[2])["loss"]
err = float(np.max(np.abs(a - b) / np.abs(a)))
print(("ok" if err < 0.02 else "FAIL") + f": fp16 losses within {err:.2e} of fp32")
sys.exit(0 if err < 0.02 else 1)
PY
[ $status -eq 0 ] && echo "all CoCa data-parallel checks passed"
exit $status
