# `loom plan` on a calibrated machine predicts Loom's own activations: for 11 layouts (1 rank, DP2, TP2,
# TP2+SP with selective recompute, PP2 1F1B, PP2 interleaved, PP2 zero-bubble, PP2 dynamic, DP2 ZeRO-3,
# bf16, full recompute) the
# prediction equals the activations line `mpirun loom train` prints (the largest rank's), and the
# model states stay within 1% of the model-states line.
source "$(dirname "$0")/loom_mpi_lib.sh"
"$LOOM" bench --calibrate --seconds-per-kernel 0.01 --largest-gemm 256 --output "$TMP/hw.json" --name this-vm \
  >/dev/null 2>&1 || fail "bench --calibrate"
MODEL=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --max-position-embeddings 64
       --micro-batch-size 2 --global-batch-size 8 --lr 1e-3 --hidden-dropout 0.1 --attention-dropout 0.1)
DATA=(--data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES" --split 100,0,0
      --train-iters 2 --log-interval 1 --eval-iters 0)
check() {  # name np flags...
  local name=$1 np=$2
  shift 2
  if ! timeout -k 5 120 "$MPIRUN" --oversubscribe -np "$np" "$LOOM" train "${MODEL[@]}" "${DATA[@]}" "$@" \
      >"$TMP/$name.log" 2>&1; then
    fail "$name: train exited non-zero"; tail -3 "$TMP/$name.log"; return
  fi
  if ! "$LOOM" plan "${MODEL[@]}" --world-size "$np" --hardware "$TMP/hw.json" --compare-log "$TMP/$name.log" "$@" \
      >"$TMP/$name.plan" 2>&1; then
    fail "$name: plan exited non-zero"; tail -3 "$TMP/$name.plan"; return
  fi
  local act states
  act=$(grep -E '^   activations \(MB\) ' "$TMP/$name.plan" | awk '{print $3, $4}')
  states=$(grep -E '^   model states \(MB\) ' "$TMP/$name.plan" | awk '{print $4, $5}')
  echo "$name: activations measured/predicted $act; model states measured/predicted $states"
  awk -v a="$act" 'BEGIN { split(a, v, " "); exit !(v[1] > 0 && v[1] == v[2]) }' || fail "$name: activations differ ($act)"
  awk -v a="$states" 'BEGIN { split(a, v, " "); r = v[2] / v[1]; exit !(r > 0.99 && r < 1.01) }' \
    || fail "$name: model states differ by more than 1% ($states)"
}
check one 1
check dp2 2
check tp2 2 --tensor-model-parallel-size 2
check tp2_sp_selective 2 --tensor-model-parallel-size 2 --sequence-parallel --recompute-granularity selective
check pp2_1f1b 2 --pipeline-model-parallel-size 2
check pp2_interleaved 2 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1
check pp2_zero_bubble 2 --pipeline-model-parallel-size 2 --pipeline-schedule zero-bubble
check pp2_dynamic 2 --pipeline-model-parallel-size 2 --pipeline-schedule dynamic
check dp2_zero3 2 --zero-stage 3
check bf16 1 --bf16
check full_recompute 1 --recompute-granularity full
[ $status -eq 0 ] && echo "plan predicts every layout's activations" || echo "plan activations disagree"
exit $status
