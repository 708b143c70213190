# Pipeline parallelism under mpirun: an 8-layer GPT with PP 2 and 4 under every schedule (GPipe, 1F1B,
# interleaved with 2 virtual stages) and (DP, TP, PP) = (2, 2, 2) trains exactly as one process (losses,
# grad norms, final weights within 1e-5). And the memory claim: with 1F1B the first stage keeps at most P
# micro-batches of activations, with GPipe all M (allocator peak).
source "$(dirname "$0")/layout_lib.sh"
LAYOUT_EXTRA=(--layers 8)
run one 1
run pp2_1f1b 2 --pp 2
run pp2_gpipe 2 --pp 2 --schedule gpipe
run pp4_1f1b 4 --pp 4
run pp4_gpipe 4 --pp 4 --schedule gpipe
run pp2_interleaved 2 --pp 2 --vpp 2 --schedule interleaved
run pp4_interleaved 4 --pp 4 --vpp 2 --schedule interleaved
run dp2_tp2_pp2 8 --pp 2 --tp 2 --sp 1
run dp2_tp2_pp2_interleaved 8 --pp 2 --tp 2 --vpp 2 --schedule interleaved --dropout 0
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 8 "$TMP/one.st" "$TMP"/pp*.st "$TMP"/dp2*.st || status=1

# Activation memory on the first stage, M = 8 micro-batches, P = 2.
run mem_1f1b 2 --pp 2 --global-batch 16 --iters 2
run mem_gpipe 2 --pp 2 --global-batch 16 --iters 2 --schedule gpipe
s1=$(grep -oE 'slots=[0-9]+' "$TMP/mem_1f1b.log" | cut -d= -f2)
sg=$(grep -oE 'slots=[0-9]+' "$TMP/mem_gpipe.log" | cut -d= -f2)
m1=$(grep -oE 'peak_allocated_mb=[0-9.]+' "$TMP/mem_1f1b.log" | cut -d= -f2)
mg=$(grep -oE 'peak_allocated_mb=[0-9.]+' "$TMP/mem_gpipe.log" | cut -d= -f2)
echo "first stage: 1F1B keeps $s1 micro-batches ($m1 MB peak), GPipe $sg ($mg MB peak)"
[ "$s1" = 2 ] && [ "$sg" = 8 ] || { echo "FAIL: expected 2 (P) and 8 (M) micro-batches in flight"; status=1; }
awk -v a="$m1" -v b="$mg" 'BEGIN { exit !(b > a * 1.5) }' || { echo "FAIL: GPipe should need far more memory"; status=1; }
[ $status -eq 0 ] && echo "all pipeline checks passed"
exit $status
