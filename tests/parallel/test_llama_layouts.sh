# Llama (RMSNorm, RoPE with llama3 scaling, grouped-query attention 8 heads / 2 groups, SwiGLU, no biases,
# untied output layer) trains the same model in every layout as on one process: TP2+SP, PP2 under 1F1B and
# interleaved, DP2xTP2, ZeRO-3 over DP2 (fp32, dropout on: 1e-5), and bf16 under PP2 (1e-3). Real
# processes under mpirun. The same with linear biases (HF attention_bias + mlp_bias): TP2+SP, PP2, DP2xTP2.
source "$(dirname "$0")/layout_lib.sh"
LAYOUT_EXTRA=(--arch llama --layers 4 --dropout 0.1)
run one 1
run tp2_sp 2 --tp 2 --sp 1
run pp2_1f1b 2 --pp 2
run pp2_interleaved 2 --pp 2 --vpp 2 --schedule interleaved
run dp2_tp2 4 --tp 2 --bucket 4000
run zero3_dp2 2 --zero 3
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 4 "$TMP/one.st" "$TMP"/tp2_sp.st "$TMP"/pp2_*.st "$TMP"/dp2_tp2.st \
  "$TMP"/zero3_dp2.st || status=1
run bf16_one 1 --precision bf16
run bf16_pp2 2 --pp 2 --precision bf16
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-3 4 "$TMP/bf16_one.st" "$TMP/bf16_pp2.st" || status=1
# With linear biases (HF's attention_bias + mlp_bias): gate/up biases split over TP with their weights.
LAYOUT_EXTRA=(--arch llama-bias --layers 4 --dropout 0.1)
run bias_one 1
run bias_tp2_sp 2 --tp 2 --sp 1
run bias_pp2 2 --pp 2
run bias_dp2_tp2 4 --tp 2 --bucket 4000
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 4 "$TMP/bias_one.st" "$TMP"/bias_tp2_sp.st "$TMP"/bias_pp2.st \
  "$TMP"/bias_dp2_tp2.st || status=1
[ $status -eq 0 ] && echo "all Llama layouts agree" || echo "Llama layouts disagree"
exit $status
