# Every data/tensor/sequence-parallel layout trains the same model as one process: the same losses,
# grad norms and final weights (fp32, dropout off, and again with dropout on: masks are a function of
# the global element, not of the layout) within 1e-5 relative. Real processes under mpirun.
source "$(dirname "$0")/layout_lib.sh"
for dropout in 0 0.1; do
  run "d${dropout}_dp1_tp1" 1 --dropout $dropout
  run "d${dropout}_dp2_tp1" 2 --dropout $dropout --bucket 4000
  run "d${dropout}_dp2_tp1_nooverlap" 2 --dropout $dropout --overlap 0 --bucket 100000000
  run "d${dropout}_dp1_tp2" 2 --tp 2 --dropout $dropout
  run "d${dropout}_dp1_tp2_sp" 2 --tp 2 --sp 1 --dropout $dropout
  run "d${dropout}_dp2_tp2_sp" 4 --tp 2 --sp 1 --dropout $dropout --bucket 4000
  run "d${dropout}_dp1_tp4_sp" 4 --tp 4 --sp 1 --dropout $dropout
  run "d${dropout}_dp4_tp1" 4 --dropout $dropout --bucket 4000
  run "d${dropout}_dp2_tp2" 4 --tp 2 --dropout $dropout
  /usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 8 "$TMP/d${dropout}_dp1_tp1.st" "$TMP"/d${dropout}_dp[124]_tp[124]*.st \
    "$TMP/d${dropout}_dp2_tp1_nooverlap.st" || status=1
done
[ $status -eq 0 ] && echo "all layouts agree" || echo "layouts disagree"
exit $status
