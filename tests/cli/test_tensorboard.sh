# TensorBoard: `--tensorboard-dir` with every --log-*-to-tensorboard flag on a short fp16 run (skipped
# iterations at the 2^32 loss scale, then updates) with validation; the event file is read back by an
# independent decoder (tfevents.py: TFRecord framing, both masked CRC-32Cs through python3-crcmod, the
# protobuf wire format by hand) and every scalar is compared with the log lines. Also
# --tensorboard-log-interval, a DeepSpeed JSON's tensorboard section, a run ended by SIGTERM, and
# directories that cannot be written.
set -e
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
corpus c 200
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --lr 1e-3 --lr-warmup-iters 2 --lr-decay-style cosine --train-iters 10 --log-interval 1 --eval-interval 5
      --eval-iters 2 --split 80,10,10 --fp16 --initial-loss-scale 1048576 --hysteresis 1
      --data-path "$TMP/c_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
ALL=(--log-timers-to-tensorboard --log-batch-size-to-tensorboard --log-validation-ppl-to-tensorboard
     --log-memory-to-tensorboard --log-world-size-to-tensorboard)

run "$LOOM" train "${ARGS[@]}" "${ALL[@]}" --tensorboard-dir "$TMP/tb/run1"
[ "$CODE" -eq 0 ] || fail "train with --tensorboard-dir"
expect_line "  tensorboard_dir ................................. $TMP/tb/run1"
expect_line "  log_learning_rate_to_tensorboard ................ True"
expect_line "  log_loss_scale_to_tensorboard ................... True"
expect_line "  tensorboard_queue_size .......................... 1000"
cp "$TMP/out" "$TMP/run1.log"
(cd "$HERE" && $PY tensorboard_vs_log.py "$TMP/run1.log" "$TMP/tb/run1") || fail "event file of run 1 against its log"
# The decoder is strict: one flipped bit in the last record's data, or a truncated file, is refused.
mkdir -p "$TMP/bad_crc" "$TMP/bad_len"
f=$(ls "$TMP"/tb/run1/events.out.tfevents.*)
$PY - "$f" "$TMP/bad_crc/$(basename "$f")" "$TMP/bad_len/$(basename "$f")" <<'PYEOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
open(sys.argv[3], 'wb').write(b[:-3])
b[-10] ^= 0x10
open(sys.argv[2], 'wb').write(b)
PYEOF
for d in bad_crc bad_len; do
  (cd "$HERE" && $PY -c "import sys; from tfevents import read_dir; read_dir(sys.argv[1])" "$TMP/$d" 2>/dev/null) \
    && fail "the decoder accepted a damaged file ($d)"
done

# Every second iteration, no learning rate, a queue of one event; a DeepSpeed JSON adds DeepSpeed's tags.
cat > "$TMP/ds.json" <<JSON
{"train_micro_batch_size_per_gpu": 2, "fp16": {"enabled": true, "initial_scale_power": 20, "hysteresis": 1},
 "tensorboard": {"enabled": true, "output_path": "$TMP/ds_tb", "job_name": "job1"}}
JSON
run "$LOOM" train "${ARGS[@]}" "${ALL[@]}" --tensorboard-dir "$TMP/tb/run2" --tensorboard-log-interval 2 \
  --tensorboard-queue-size 1 --no-log-learnig-rate-to-tensorboard --deepspeed-config "$TMP/ds.json"
[ "$CODE" -eq 0 ] || fail "train with --tensorboard-log-interval 2 and a DeepSpeed tensorboard section"
expect_line "  log_learning_rate_to_tensorboard ................ False"
cp "$TMP/out" "$TMP/run2.log"
(cd "$HERE" && $PY tensorboard_vs_log.py "$TMP/run2.log" "$TMP/tb/run2" --interval 2 --no-lr --deepspeed "$TMP/ds_tb/job1") \
  || fail "event files of run 2 against its log"

# SIGTERM: the process ends by the signal, and the file holds every iteration logged before it, intact.
"$LOOM" train "${ARGS[@]}" --train-iters 100000 --eval-interval 100000 --tensorboard-dir "$TMP/tb/run3" >"$TMP/run3.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -qE 'iteration +20/' "$TMP/run3.log" && break; sleep 0.1; done
kill -TERM $pid
set +e; wait $pid; status=$?; set -e
[ "$status" -eq 143 ] || fail "SIGTERM: exit status $status, expected 143"
(cd "$HERE" && $PY - "$TMP/tb/run3" <<'PYEOF') || fail "event file of the run ended by SIGTERM"
import sys
from tfevents import read_dir, scalars
steps = [s for s, _ in scalars(read_dir(sys.argv[1]))['lm loss']]
assert steps[:20] == list(range(1, 21)) and steps == list(range(1, len(steps) + 1)), steps[:30]
print('SIGTERM after iteration 20: %d iterations in the event file' % len(steps))
PYEOF

# Directories that cannot be written: one error line, exit 2, before any work.
echo x > "$TMP/plain"
expect_error "--tensorboard-dir $TMP/plain is not a directory" "$LOOM" train "${ARGS[@]}" --tensorboard-dir "$TMP/plain"
expect_error "cannot create --tensorboard-dir $TMP/plain/sub" "$LOOM" train "${ARGS[@]}" --tensorboard-dir "$TMP/plain/sub"
expect_error "cannot write to --tensorboard-dir /proc/self" "$LOOM" train "${ARGS[@]}" --tensorboard-dir /proc/self
expect_error "--tensorboard-log-interval must be positive" "$LOOM" train "${ARGS[@]}" --tensorboard-dir "$TMP/tb/x" \
  --tensorboard-log-interval 0
expect_error "--tensorboard-queue-size must be within 1..1000000" "$LOOM" train "${ARGS[@]}" --tensorboard-dir "$TMP/tb/x" \
  --tensorboard-queue-size 0
cat > "$TMP/ds_bad.json" <<JSON
{"tensorboard": {"enabled": true, "output_path": "$TMP/plain", "job_name": "j"}}
JSON
expect_error "cannot create the DeepSpeed tensorboard directory $TMP/plain/j" "$LOOM" train "${ARGS[@]}" \
  --deepspeed-config "$TMP/ds_bad.json"
echo '{"tensorboard": {"enabled": "yes"}}' > "$TMP/ds_bad2.json"
expect_error "$TMP/ds_bad2.json: tensorboard.enabled must be true or false" "$LOOM" train "${ARGS[@]}" \
  --deepspeed-config "$TMP/ds_bad2.json"
[ ! -e "$TMP/tb/x" ] || fail "a refused run created its directory"
finish
