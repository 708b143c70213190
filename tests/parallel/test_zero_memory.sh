# ZeRO's memory accounting, measured: `loom train --fp16` under mpirun prints each rank's model states
# (the bytes of the stored weights, gradients and optimizer state buffers). With P parameters, N
# data-parallel ranks and fp16 weights and gradients, they must match the ZeRO paper's formula within 10%:
#   no ZeRO 16P, stage 1 4P + 12P/N, stage 2 2P + 14P/N, stage 3 16P/N bytes.
source "$(dirname "$0")/loom_mpi_lib.sh"
ARGS=(--num-layers 4 --hidden-size 128 --num-attention-heads 4 --seq-length 32 --micro-batch-size 1 --global-batch-size 8
      --lr 1e-3 --train-iters 2 --log-interval 1 --eval-iters 0 --fp16 --initial-loss-scale 4096
      --data-path "$TMP/small_text_document" --vocab-file "$SRC/data/gpt2/vocab.json" --merge-file "$SRC/data/gpt2/merges.txt")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
check() {  # stage np
  local z=$1 n=$2 log="$TMP/z$1_np$2.log"
  "${MPI[@]}" -np "$n" "$LOOM" train "${ARGS[@]}" --zero-stage "$z" > "$log" 2>&1 || { fail "stage $z on $n ranks"; tail -3 "$log"; return; }
  local P
  P=$(grep -oE 'model parallel rank \(0, 0\): [0-9]+' "$log" | awk '{print $NF}')
  grep -E '^\[Rank [0-9]+\] model states' "$log" | awk -v z="$z" -v n="$n" -v P="$P" '
    { w = $8; g = $11; o = $14; t = $17; n_lines++
      want = z == 0 ? 16 * P : z == 1 ? 4 * P + 12 * P / n : z == 2 ? 2 * P + 14 * P / n : 16 * P / n
      have = t * 1048576; d = (have - want) / want; if (d < 0) d = -d; if (d > worst) worst = d
      if (NR == 1) printf "stage %d, %d ranks, P=%d: weights %.3f MB, gradients %.3f MB, optimizer %.3f MB, total %.3f MB; formula %.3f MB\n", z, n, P, w, g, o, t, want / 1048576 }
    END { printf "stage %d, %d ranks: %d ranks reported, worst deviation from the formula %.2f%%\n", z, n, n_lines, 100 * worst
          exit !(n_lines == n && worst < 0.10) }' || fail "stage $z on $n ranks: model states do not match the ZeRO formula"
}
check 0 1
for n in 2 4; do
  for z in 1 2 3; do check $z $n; done
done
[ $status -eq 0 ] && echo "all checks passed"
exit $status
