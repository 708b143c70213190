# `loom plan --model coca`: CoCa-B/16's counts as reference log 000 prints them, without allocating the model.
set -e
source "$(dirname "$0")/lib.sh"

run bash -c "ulimit -v 400000; exec \"$LOOM\" plan --model-preset coca-b16"
[ "$CODE" -eq 0 ] || fail "plan --model-preset coca-b16 exited $CODE: $ERR"
expect_line "number of total params: 253026049"
expect_line "number of params with requires_grad: 253026049"
expect_line "number of visual params: 88630528"
expect_line "number of text params: 63428096"
expect_line "number of model state_dict keys: 770"

run "$LOOM" plan --model coca --vision-layers 2 --vision-width 64 --vision-heads 4 --image-size 32 --patch-size 8 \
  --text-width 32 --text-heads 4 --text-layers 2 --decoder-layers 2 --embed-dim 32 --pooler-heads 4 --pooler-queries 4 \
  --text-vocab-size 100 --text-context-length 16 --precision fp16 --enable-deepspeed --zero-stage 1 --world-size 2
[ "$CODE" -eq 0 ] || fail "small coca plan exited $CODE: $ERR"
expect_line "number of total params: 1695649"

expect_error "--image-size 225 is not divisible by --patch-size 16" "$LOOM" plan --model coca --image-size 225
expect_error "--vision-width 768 is not divisible by --vision-heads 7" "$LOOM" plan --model coca --vision-heads 7
expect_error "unknown --model-preset 'coca-l14' for --model coca (one of: coca-b16)" \
  "$LOOM" plan --model coca --model-preset coca-l14
expect_error "--zero-stage 3 is not 0, 1 or 2" "$LOOM" plan --model coca --zero-stage 3

# With --hardware: the predicted step, as log 000 ran (4 ranks, 512 images each, fp16, ZeRO-1, LAMB,
# gradient checkpointing), in EVA-CLIP's terms; the rows sum to the step.
LOG000=(--model-preset coca-b16 --batch-size 512 --world-size 4 --precision amp --enable-deepspeed --zero-stage 1
        --optimizer lamb --grad-checkpointing)
run "$LOOM" plan "${LOG000[@]}" --hardware V100-32G
[ "$CODE" -eq 0 ] || fail "coca plan --hardware exited $CODE: $ERR"
expect_line " > predicted time per step on 4 x V100-32G (ms, batch 512 per rank):"
grep -qE '^   recompute +[0-9.]+ ' <<<"$OUT" || fail "no recompute row: $OUT"
grep -qE '^   ZeRO parameter gathers +[0-9.]+ ' <<<"$OUT" || fail "no ZeRO-1 gather row: $OUT"
batch=$(sed -nE 's/^ Batch \(t\): ([0-9.]+), ([0-9.]+)\/s$/\1 \2/p' <<<"$OUT")
[ -n "$batch" ] || fail "no 'Batch (t): T, N/s' line: $OUT"
read -r t rate <<<"$batch"
sum=$(awk '/^   [a-zA-Z]/ {s += $(NF-1)} END {printf "%.3f", s / 1000}' <<<"$OUT")
awk -v a="$t" -v b="$sum" 'BEGIN {exit !(a - b < 0.002 && b - a < 0.002)}' || fail "rows sum to $sum s, Batch (t) says $t"
awk -v t="$t" -v r="$rate" 'BEGIN {exit !(r / (2048 / t) > 0.999 && r / (2048 / t) < 1.001)}' || fail "$rate/s is not 2048 / $t"
# The memory line (plan/coca_memory_model.h, unit-tested term by term) and the verdict on the device.
expect_line " > predicted GPU memory per rank, EVA-CLIP on PyTorch/DeepSpeed: MemAllocated=5.05GB, MaxMemAllocated=31.61GB (at the start of the backward)"
expect_line " > fits on V100-32G (32.00 GB)"
run "$LOOM" plan "${LOG000[@]}" --hardware RTX4090
expect_line " > does not fit on RTX4090 (24.00 GB)"
# --compare-log with reference log 000 itself: EVA-CLIP's Batch (t) (mean of the windows after the first,
# 1.839 s) and DeepSpeed's last MemAllocated / MaxMemAllocated beside the prediction.
gzip -dc "$SRC/tests/data/reference_logs/000-coca-evaclip-deepspeed-zero1.log.gz" > "$TMP/log000.log"
run "$LOOM" plan "${LOG000[@]}" --hardware V100-32G --compare-log "$TMP/log000.log"
[ "$CODE" -eq 0 ] || fail "--compare-log exited $CODE: $ERR"
expect_line "   Batch (t) (s)                         1.839       2.680   1.457"
expect_line "   MemAllocated (GB)                     5.290       5.048   0.954"
expect_line "   MaxMemAllocated (GB)                 28.740      31.615   1.100"
run "$LOOM" plan "${LOG000[@]}" --compare-log "$TMP/log000.log"
expect_line "   MaxMemAllocated (GB)                 28.740      31.615   1.100"
grep -q "Batch (t) (s)" <<<"$OUT" && fail "a step compared without --hardware"
expect_error "cannot open --compare-log $TMP/none.log" "$LOOM" plan "${LOG000[@]}" --compare-log "$TMP/none.log"
echo "no step lines here" > "$TMP/empty.log"
expect_error "$TMP/empty.log: no EVA-CLIP 'Global Steps: ... Batch (t): T' line to compare with" \
  "$LOOM" plan "${LOG000[@]}" --compare-log "$TMP/empty.log"
expect_error "unknown hardware 'TPUv4'" "$LOOM" plan "${LOG000[@]}" --hardware TPUv4
finish
