# --offload-optimizer nvme: Adam moments in a file, streamed in blocks through the step. With a memory
# budget far below the optimizer state the run gives the same losses, to the last digit, as keeping the
# state in memory, and checkpoints save and resume it exactly; also for LAMB, and for a bf16 model whose
# fp32 main weights are offloaded with the moments.
set -e
source "$(dirname "$0")/lib.sh"
corpus c 30
# 3.3M parameters: 26 MB of Adam state; the budget below keeps 3 blocks of 44739 parameters (1 MiB).
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 4 --global-batch-size 8
      --train-iters 20 --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 2 --log-interval 1 --eval-iters 0
      --data-path "$TMP/c_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
fields() { grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' "$1"; }
run "$LOOM" train "${ARGS[@]}"
cp "$TMP/out" "$TMP/memory.log"
run "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path "$TMP/nvme" --memory-budget-gb 0.001 --save "$TMP/ck" \
  --save-interval 10
[ "$CODE" -eq 0 ] || fail "offloaded run"
expect_line "> optimizer state offloaded to $TMP/nvme in blocks of 44739 parameters"
diff <(fields "$TMP/memory.log") <(fields "$TMP/out") >/dev/null || fail "offloading changed the losses"
[ -z "$(ls -A "$TMP/nvme")" ] || fail "the offload file was left behind"
# Resume from iteration 10 with the state offloaded: the same second half.
run "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path "$TMP/nvme" --memory-budget-gb 0.001 \
  --load "$TMP/ck/iter_0000010"
diff <(fields "$TMP/memory.log" | tail -10) <(fields "$TMP/out") >/dev/null || fail "offloaded resume differs"
# LAMB streams twice over the blocks (moments and norms, then the trust-ratio update): same losses too.
run "$LOOM" train "${ARGS[@]}" --optimizer lamb
cp "$TMP/out" "$TMP/lamb.log"
run "$LOOM" train "${ARGS[@]}" --optimizer lamb --offload-optimizer nvme --offload-path "$TMP/nvme" --memory-budget-gb 0.001
[ "$CODE" -eq 0 ] || fail "offloaded LAMB run"
diff <(fields "$TMP/lamb.log") <(fields "$TMP/out") >/dev/null || fail "offloading changed LAMB's losses"
awk '/lm loss:/ { l = $0; sub(/.*lm loss: /, "", l); sub(/ .*/, "", l); if (!first) first = l; last = l }
     END { exit !(last < first - 0.5) }' "$TMP/lamb.log" || fail "LAMB did not train"
# Half precision: the fp32 main weights go to the file as well (36 bytes per block element).
run "$LOOM" train "${ARGS[@]}" --bf16
cp "$TMP/out" "$TMP/bf16.log"
run "$LOOM" train "${ARGS[@]}" --bf16 --offload-optimizer nvme --offload-path "$TMP/nvme" --memory-budget-gb 0.001
[ "$CODE" -eq 0 ] || fail "offloaded bf16 run"
expect_line "> optimizer state offloaded to $TMP/nvme in blocks of 29826 parameters"
diff <(fields "$TMP/bf16.log") <(fields "$TMP/out") >/dev/null || fail "offloading changed the bf16 losses"
expect_error "--offload-optimizer nvme needs --offload-path" "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme
expect_error "--offload-path /proc/nope: cannot write in /proc" "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path /proc/nope
finish
