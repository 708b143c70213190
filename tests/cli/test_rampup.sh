# Megatron's batch-size ramp-up (--rampup-batch-size START INCREMENT SAMPLES) and
# --decrease-batch-size-if-needed, one process:
#  - every iteration's global batch size and consumed samples, and the iteration count, equal Megatron's
#    calculator (the Python transcription in tests/parity/test_batch_rampup.py); every learning rate equals
#    Megatron's schedule in samples; TensorBoard's batch-size scalar follows the batch;
#  - the ramp-up equals an explicit sequence of constant-batch runs, each resuming the last one's checkpoint
#    (batch 2, then 4, 6 and 8 at the iterations the ramp changes): the same losses, grad norms and rates;
#  - with --save, a checkpoint at each change of the micro-batch count (Megatron's); resuming in the middle
#    of the ramp gives the uninterrupted run bit for bit;
#  - the same for Llama (batches, the first phase against a constant batch, resume mid-ramp);
#  - bad input: one error line, exit 2, before any work.
set -e
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
corpus small 40
BASE=(--num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2
      --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-decay-samples 96 --lr-warmup-samples 8 --log-interval 1
      --eval-interval 1000 --eval-iters 0 --hidden-dropout 0.1 --attention-dropout 0.1 --split 98,1,1 --seed 5
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
RAMP=("${BASE[@]}" --global-batch-size 8 --rampup-batch-size 2 2 24 --train-samples 96)
fields() { grep -oE 'consumed samples: +[0-9]+ \|( skipped samples: +[0-9]+ \|)?|learning rate: .* global batch size: +[0-9]+ \| lm loss: [0-9.E+-]+|grad norm: [0-9.]+' "$1"; }

# 1. The ramp-up against Megatron's arithmetic: 2, 2, 2, 2, 4, 4, 6, 6, then 8 (16 iterations for 96 samples).
run "$LOOM" train "${RAMP[@]}" --save "$TMP/ramp" --tensorboard-dir "$TMP/tb" --log-batch-size-to-tensorboard
[ "$CODE" -eq 0 ] || fail "ramp-up run"
cp "$TMP/out" "$TMP/ramp.log"
expect_line "will use batch size rampup starting from global batch size 2 to global batch size 8 with batch size increments 2 over 24 samples."
expect_line "setting initial batch size to 2"
expect_line "setting training iterations to 16"
for step in "2 to 4" "4 to 6" "6 to 8"; do expect_line "ramping up batch size from $step"; done
grep -qE '^  rampup_batch_size \.+ \['"'"'2'"'"', '"'"'2'"'"', '"'"'24'"'"'\]$' "$TMP/ramp.log" || fail "argument block: rampup_batch_size"
PYTHONPATH="$SRC/tests/parity:$HERE" /usr/bin/python3 - "$TMP/ramp.log" "$TMP/tb" <<'PYEOF' || fail "the ramp-up differs from Megatron's calculator"
import re, sys
from test_batch_rampup import megatron
from test_sample_schedule import megatron_lr
from tfevents import read_dir, scalars
log = open(sys.argv[1]).read()
ref = megatron(8, 2, 1, 0, 2, 2, 24, 96)
steps = [tuple(map(int, t.split())) for t in ref.split(" | ")[1:]]
lines = re.findall(r"iteration +(\d+)/ +(\d+) \| consumed samples: +(\d+) .* learning rate: ([0-9.E+-]+) \| global batch size: +(\d+) \|", log)
assert len(lines) == len(steps) == 16, (len(lines), ref)
consumed = 0
for (it, total, cons, lr, gbs), (g, running, m) in zip(lines, steps):
    consumed += running
    assert int(total) == 16 and int(gbs) == running == 2 * m and int(cons) == consumed, (it, cons, gbs, g, running, m)
    assert lr == "%.6E" % megatron_lr(consumed, 3e-3, 3e-4, 0.0, 8, 96, "cosine"), (it, lr)
tb = [(s, int(v)) for s, v in scalars(read_dir(sys.argv[2]))["batch-size"]]
assert tb == [(i + 1, r) for i, (_, r, _) in enumerate(steps)], tb
print("batches", [r for _, r, _ in steps], "match Megatron; learning rates and TensorBoard's batch-size too")
PYEOF
# Megatron saves when the micro-batch count changes (before iterations 5, 7 and 9), and at the end.
for it in 0000004 0000006 0000008 0000016; do [ -d "$TMP/ramp/iter_$it" ] || fail "no checkpoint iter_$it"; done
[ "$(ls -d "$TMP/ramp"/iter_* | wc -l)" -eq 4 ] || fail "expected 4 checkpoints, got $(ls -d "$TMP/ramp"/iter_*)"

# 2. The same run as constant batches resumed from one another: 2 (4 iterations), 4 (2), 6 (2), 8 (8).
: > "$TMP/stitched.log"
prev=()
for stage in "2 4" "4 6" "6 8" "8 16"; do
  set -- $stage
  run "$LOOM" train "${BASE[@]}" --global-batch-size "$1" --train-samples 200 --exit-interval "$2" \
    --save "$TMP/stitched" "${prev[@]}"
  [ "$CODE" -eq 0 ] || fail "constant batch $1 up to iteration $2"
  echo "$OUT" >> "$TMP/stitched.log"
  prev=(--load "$TMP/stitched")
done
diff <(fields "$TMP/ramp.log") <(fields "$TMP/stitched.log") > "$TMP/diff" \
  || { fail "the ramp-up differs from constant batches 2, 4, 6, 8"; head "$TMP/diff"; }
n=$(fields "$TMP/stitched.log" | grep -c 'lm loss')
[ "$n" -eq 16 ] || fail "stitched runs: expected 16 iterations, got $n"
cmp -s "$TMP/ramp/iter_0000016/shard_tp00_pp000.safetensors" "$TMP/stitched/iter_0000016/shard_tp00_pp000.safetensors" \
  || fail "final weights and optimizer state differ from the stitched constant-batch runs"

# 3. Resume in the middle of the ramp (after iteration 5, inside the batch-4 phase): bit for bit.
run "$LOOM" train "${RAMP[@]}" --exit-interval 5 --save "$TMP/split"
[ "$CODE" -eq 0 ] || fail "first part"
cp "$TMP/out" "$TMP/part1.log"
run "$LOOM" train "${RAMP[@]}" --load "$TMP/split" --save "$TMP/split"
[ "$CODE" -eq 0 ] || fail "resumed part"
expect_line "  successfully loaded checkpoint from $TMP/split at iteration 5"
cat "$TMP/part1.log" "$TMP/out" > "$TMP/resumed.log"
diff <(fields "$TMP/ramp.log") <(fields "$TMP/resumed.log") > "$TMP/diff" || { fail "resumed ramp-up differs"; head "$TMP/diff"; }
cmp -s "$TMP/ramp/iter_0000016/shard_tp00_pp000.safetensors" "$TMP/split/iter_0000016/shard_tp00_pp000.safetensors" \
  || fail "final weights and optimizer state differ after resuming mid-ramp"

# 4. --decrease-batch-size-if-needed: 3, 6, 9 on micro-batches of 2 run as 2, 6, 8; the rest is skipped.
run "$LOOM" train "${BASE[@]}" --global-batch-size 9 --rampup-batch-size 3 3 30 --decrease-batch-size-if-needed \
  --train-samples 60
[ "$CODE" -eq 0 ] || fail "decrease run"
expect_line "decreasing batch size from 3 to 2 to keep divisiblity by micro_batch_size=2 * data_parallel_size=1"
PYTHONPATH="$SRC/tests/parity" /usr/bin/python3 - "$TMP/out" <<'PYEOF' || fail "--decrease-batch-size-if-needed differs from Megatron"
import re, sys
from test_batch_rampup import megatron
log = open(sys.argv[1]).read()
steps = [tuple(map(int, t.split())) for t in megatron(9, 2, 1, 1, 3, 3, 30, 60).split(" | ")[1:]]
lines = re.findall(r"consumed samples: +(\d+) \|(?: skipped samples: +(\d+) \|)? .* global batch size: +(\d+) \|", log)
assert len(lines) == len(steps), (len(lines), steps)
consumed = skipped = 0
for (cons, skip, gbs), (g, running, m) in zip(lines, steps):
    consumed += running
    skipped += g - running
    assert (int(cons), int(skip or 0), int(gbs)) == (consumed, skipped, running), (cons, skip, gbs, g, running)
assert skipped > 0
print("decrease: batches", [r for _, r, _ in steps], "skipped", skipped)
PYEOF
# A constant batch rounded down: 9 on 2 runs as 8.
run "$LOOM" train "${BASE[@]}" --global-batch-size 9 --decrease-batch-size-if-needed --train-samples 18
[ "$CODE" -eq 0 ] || fail "constant decrease run"
expect_line "decreasing batch size from 9 to 8 to keep divisiblity by micro_batch_size=2 * data_parallel_size=1"
expect_line "setting number of micro-batches to constant 4"
grep -q 'consumed samples:           16 | skipped samples:            2 |' <<<"$OUT" || fail "constant decrease: consumed 16, skipped 2"

# 5. Llama (RMSNorm, SwiGLU, RoPE, grouped-query attention, untied): the ramp's batches, its first phase equal
#    to a constant batch of 2, and a resume mid-ramp bit for bit.
LLAMA=(--model llama --num-layers 2 --hidden-size 64 --num-attention-heads 8 --group-query-attention
       --num-query-groups 2 --ffn-hidden-size 128 --seq-length 32 --max-position-embeddings 32
       --untie-embeddings-and-output-weights --micro-batch-size 2 --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine
       --lr-decay-samples 96 --lr-warmup-samples 8 --log-interval 1 --eval-interval 1000 --eval-iters 0
       --hidden-dropout 0.1 --attention-dropout 0.1 --split 98,1,1 --data-path "$TMP/small_text_document"
       --vocab-file "$VOCAB" --merge-file "$MERGES")
LRAMP=("${LLAMA[@]}" --global-batch-size 8 --rampup-batch-size 2 2 24 --train-samples 96)
run "$LOOM" train "${LRAMP[@]}" --save "$TMP/lramp"
[ "$CODE" -eq 0 ] || fail "Llama ramp-up run"
cp "$TMP/out" "$TMP/lramp.log"
[ "$(grep -oE 'global batch size: +[0-9]+' "$TMP/lramp.log" | awk '{print $4}' | tr '\n' ' ')" = "2 2 2 2 4 4 6 6 8 8 8 8 8 8 8 8 " ] \
  || fail "Llama: batches"
run "$LOOM" train "${LLAMA[@]}" --global-batch-size 2 --train-samples 200 --exit-interval 4
[ "$CODE" -eq 0 ] || fail "Llama constant batch 2"
diff <(fields "$TMP/lramp.log" | head -12) <(echo "$OUT" > "$TMP/l2.log"; fields "$TMP/l2.log") > "$TMP/diff" \
  || { fail "Llama: the ramp's batch-2 phase differs from a constant batch of 2"; head "$TMP/diff"; }
run "$LOOM" train "${LRAMP[@]}" --exit-interval 7 --save "$TMP/lsplit"
cp "$TMP/out" "$TMP/lpart1.log"
run "$LOOM" train "${LRAMP[@]}" --load "$TMP/lsplit" --save "$TMP/lsplit"
[ "$CODE" -eq 0 ] || fail "Llama resumed part"
cat "$TMP/lpart1.log" "$TMP/out" > "$TMP/lresumed.log"
diff <(fields "$TMP/lramp.log") <(fields "$TMP/lresumed.log") > "$TMP/diff" || { fail "Llama: resumed ramp-up differs"; head "$TMP/diff"; }
cmp -s "$TMP/lramp/iter_0000016/shard_tp00_pp000.safetensors" "$TMP/lsplit/iter_0000016/shard_tp00_pp000.safetensors" \
  || fail "Llama: final weights and optimizer state differ after resuming mid-ramp"

# 6. Bad input.
expect_error "--rampup-batch-size 2 4 24: the interval from the start batch size to --global-batch-size (6) is not a multiple of the increment" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 8 --rampup-batch-size 2 4 24 --train-samples 96
expect_error "--rampup-batch-size needs sample-based training: give --train-samples instead of --train-iters" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 8 --rampup-batch-size 2 2 24 --train-iters 10
expect_error "--rampup-batch-size takes 3 values" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 8 --rampup-batch-size 2 2 --train-samples 96
expect_error "--rampup-batch-size: 'x' is not an integer" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 8 --rampup-batch-size 2 x 24 --train-samples 96
expect_error "the start batch size is above --global-batch-size (8)" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 8 --rampup-batch-size 16 2 24 --train-samples 96
expect_error "the start batch size equals --global-batch-size: nothing to ramp up" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 8 --rampup-batch-size 8 2 24 --train-samples 96
expect_error "the ramp-up samples must be positive" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 8 --rampup-batch-size 2 2 0 --train-samples 96
expect_error "the ramp-up's global batch size 3 (after 0 samples) is not a multiple of --micro-batch-size x data-parallel size (2 x 1)" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 9 --rampup-batch-size 3 3 30 --train-samples 60
expect_error "rounds down to 0 micro-batches" \
  "$LOOM" train "${BASE[@]}" --global-batch-size 9 --rampup-batch-size 1 4 30 --decrease-batch-size-if-needed --train-samples 60
finish
