# ZeRO stages 1, 2 and 3 under mpirun: data-parallel 2 and 4 (and with tensor and pipeline parallelism)
# train exactly as one process, and each rank keeps 1/D of the optimizer state (stage 2: also of the
# gradients; stage 3: also of the weights).
source "$(dirname "$0")/layout_lib.sh"
run one 1
for z in 1 2 3; do
  run "z${z}_dp2" 2 --zero $z
  run "z${z}_dp4" 4 --zero $z
  run "z${z}_dp2_tp2" 4 --zero $z --tp 2 --sp 1
  run "z${z}_dp2_pp2" 4 --zero $z --pp 2 --layers 2
done
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 8 "$TMP/one.st" "$TMP"/z*.st || status=1
# LAMB: per-tensor trust ratios from norms summed over ZeRO slices and tensor-parallel shards.
run lamb_one 1 --lamb 1
run lamb_z3_dp2_tp2 4 --lamb 1 --zero 3 --tp 2 --sp 1
run lamb_z1_dp4 4 --lamb 1 --zero 1
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 8 "$TMP/lamb_one.st" "$TMP"/lamb_z*.st || status=1
# Optimizer state per rank: 1/D of the (padded) flat buffer.
for f in "$TMP"/z*_dp4.log; do
  read -r have total < <(grep -oE 'optimizer_state_floats=[0-9]+ of [0-9]+' "$f" | sed -E 's/.*=([0-9]+) of ([0-9]+)/\1 \2/')
  [ $((have * 4)) -eq "$total" ] || { echo "FAIL: $(basename "$f"): optimizer state $have of $total, expected a quarter"; status=1; }
  read -r w g < <(grep -oE 'weight_floats=[0-9]+ grad_floats=[0-9]+' "$f" | sed -E 's/weight_floats=([0-9]+) grad_floats=([0-9]+)/\1 \2/')
  z=$(basename "$f" | cut -c2)
  want_g=$((total / 2)); [ "$z" -ge 2 ] && want_g=$((total / 8))
  want_w=$((total / 2)); [ "$z" -ge 3 ] && want_w=$((total / 8))
  [ "$g" -eq "$want_g" ] || { echo "FAIL: $(basename "$f"): $g gradient floats, expected $want_g"; status=1; }
  [ "$w" -eq "$want_w" ] || { echo "FAIL: $(basename "$f"): $w weight floats, expected $want_w"; status=1; }
done
[ $status -eq 0 ] && echo "all ZeRO checks passed"
exit $status
