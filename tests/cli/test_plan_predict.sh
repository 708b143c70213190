# `loom plan --hardware` (time table and Megatron's iteration line), `--search`, `--compare-log` and
# `loom bench --calibrate`; every bad input refused with one line and exit 2.
set -e
source "$(dirname "$0")/lib.sh"

# Reference log 002's run on an A100: the table, the memory line and Megatron's iteration line, whose
# tokens per second per GPU must be the global batch's tokens over the elapsed time.
run "$LOOM" plan --model-preset gpt2-1.5b --micro-batch-size 8 --global-batch-size 64 --fp16 \
  --recompute-granularity full --hardware A100-80G
[ "$CODE" -eq 0 ] || fail "plan --hardware exited $CODE"
LINE=$(grep -E '^ elapsed time per iteration \(ms\): [0-9.]+ \| throughput per GPU \(TFLOP/s/GPU\): [0-9.]+ \| tokens per second per GPU: [0-9.]+$' <<<"$OUT" || true)
[ -n "$LINE" ] || fail "no Megatron iteration line"
awk -F'[:|]' '{ms=$2; tok=$6; want=64*1024/(ms/1000); if (tok/want < 0.999 || tok/want > 1.001) exit 1}' <<<"$LINE" \
  || fail "tokens per second do not follow from the elapsed time: $LINE"
grep -q '^   recompute ' <<<"$OUT" || fail "no recompute row with --recompute-granularity full"
grep -q '^ > predicted memory per GPU (MB) | model states: ' <<<"$OUT" || fail "no memory line"

# Search: 10 layouts, fastest first, each with its flags; a fixed layout flag stays fixed.
run "$LOOM" plan --model-preset llama3-8b --global-batch-size 256 --bf16 --hardware H100-SXM --search --gpus 64 \
  --tensor-model-parallel-size 4
[ "$CODE" -eq 0 ] || fail "search exited $CODE"
[ "$(grep -c '^ #[0-9]*  TP 4  PP ' <<<"$OUT")" -eq 10 ] || fail "expected 10 layouts, all TP 4"
[ "$(grep -c '^     mpirun -np 64 loom train --tensor-model-parallel-size 4 ' <<<"$OUT")" -eq 10 ] || fail "expected 10 flag lines"
grep -oE '^ #[0-9]+ .*elapsed time per iteration \(ms\): [0-9.]+' <<<"$OUT" | awk '{print $NF}' > "$TMP/times"
sort -n -c "$TMP/times" || fail "layouts not ranked by step time"

# calibration writes a file plan reads
run "$LOOM" bench --calibrate --seconds-per-kernel 0.01 --largest-gemm 512 --output "$TMP/hw.json" --name this-vm
[ "$CODE" -eq 0 ] || fail "bench --calibrate exited $CODE: $ERR"
grep -q '"name": "this-vm"' "$TMP/hw.json" || fail "calibration file lacks its name"
run "$LOOM" plan --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --max-position-embeddings 32 \
  --hardware "$TMP/hw.json"
[ "$CODE" -eq 0 ] || fail "plan with the calibrated file exited $CODE: $ERR"
grep -q 'on 1 x this-vm' <<<"$OUT" || fail "the prediction does not name the calibrated device"

# --compare-log reads a run's iteration lines: the measured step is the median after the first iteration.
cat > "$TMP/run.log" <<'LOG'
 [2026-01-01 00:00:00] iteration        1/       4 | consumed samples:            8 | elapsed time per iteration (ms): 900.0 | learning rate: 1.000000E-04 | global batch size:     8 |
 [2026-01-01 00:00:01] iteration        2/       4 | consumed samples:           16 | elapsed time per iteration (ms): 110.0 | learning rate: 1.000000E-04 | global batch size:     8 |
time (ms) | forward-backward: 100.00 | forward-compute: 30.00 | backward-compute: 60.00 | optimizer: 5.00
 [2026-01-01 00:00:02] iteration        3/       4 | consumed samples:           24 | elapsed time per iteration (ms): 100.0 | learning rate: 1.000000E-04 | global batch size:     8 |
 [2026-01-01 00:00:03] iteration        4/       4 | consumed samples:           32 | elapsed time per iteration (ms): 120.0 | learning rate: 1.000000E-04 | global batch size:     8 |
[Rank 0] model states (MB) | weights: 1.00 | gradients: 1.00 | optimizer: 2.00 | total: 4.00 | working buffers: 0.50
[Rank 0] activations (MB) | micro-batches in flight: 1 | total: 3.25
LOG
run "$LOOM" plan --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --max-position-embeddings 32 \
  --micro-batch-size 4 --global-batch-size 8 --hardware "$TMP/hw.json" --compare-log "$TMP/run.log"
[ "$CODE" -eq 0 ] || fail "--compare-log exited $CODE: $ERR"
grep -qE '^   elapsed time per iteration \(ms\) +110\.00 ' <<<"$OUT" || fail "measured step is not the median 110.00"
grep -qE '^   forward-compute \(ms\) +30\.00 ' <<<"$OUT" || fail "forward-compute timer not read"
grep -qE '^   model states \(MB\) +4\.00 ' <<<"$OUT" || fail "model states line not read"
grep -qE '^   activations \(MB\) +3\.25 ' <<<"$OUT" || fail "activations line not read"

# bad input: one line, exit 2, before any output
MODEL=(--num-layers 24 --hidden-size 2048 --num-attention-heads 32 --seq-length 2048 --max-position-embeddings 2048)
expect_error "unknown hardware 'B200' (--hardware takes one of: V100-16G, V100-32G, A100-40G, A100-80G, H100-SXM, H200, RTX4090, A40, L40S, or a FILE.json)" \
  "$LOOM" plan "${MODEL[@]}" --hardware B200
[ -z "$OUT" ] || fail "unknown hardware printed output before the error"
echo '{"name": "half", "peak_fp32_flops": 1e13, "peak_tf32_flops": 0, "peak_fp16_flops": 1e14}' > "$TMP/half.json"
expect_error "$TMP/half.json: missing field 'peak_bf16_flops'" "$LOOM" plan "${MODEL[@]}" --hardware "$TMP/half.json"
expect_error "cannot open --hardware $TMP/none.json" "$LOOM" plan "${MODEL[@]}" --hardware "$TMP/none.json"
expect_error "no layout of 7 GPUs divides the model (24 layers, 32 heads, global batch 64) with the fixed flags" \
  "$LOOM" plan "${MODEL[@]}" --global-batch-size 64 --hardware A100-80G --search --gpus 7
expect_error "the model fits on no layout of 2 x RTX4090: the smallest (" \
  "$LOOM" plan --num-layers 96 --hidden-size 12288 --num-attention-heads 96 --seq-length 2048 \
  --max-position-embeddings 2048 --global-batch-size 8 --fp16 --hardware RTX4090 --search --gpus 2
grep -q " more than the 22.80 GiB usable" <<<"$ERR" || fail "the fits-nowhere message does not say by how much"
expect_error "V100-32G has no bf16 arithmetic" "$LOOM" plan "${MODEL[@]}" --bf16 --hardware V100-32G
expect_error "--search needs --gpus N (N > 0)" "$LOOM" plan "${MODEL[@]}" --hardware A100-80G --search
expect_error "--search needs --hardware" "$LOOM" plan "${MODEL[@]}" --search --gpus 8
expect_error "--world-size must not be negative" "$LOOM" plan "${MODEL[@]}" --world-size -2
expect_error "cannot open --compare-log $TMP/nolog" "$LOOM" plan "${MODEL[@]}" --hardware A100-80G --compare-log "$TMP/nolog"
expect_error "loom bench needs --calibrate" "$LOOM" bench
expect_error "--largest-gemm must be at least 128" "$LOOM" bench --calibrate --largest-gemm 64
expect_error "--seconds-per-kernel must be in (0, 5]" "$LOOM" bench --calibrate --seconds-per-kernel 0
expect_error "--name must not be empty" "$LOOM" bench --calibrate --name ""
# An --output that cannot be written is refused before anything is measured, and nothing is created.
expect_error "--output $TMP/nodir/hw.json: " "$LOOM" bench --calibrate --output "$TMP/nodir/hw.json"
[ ! -e "$TMP/nodir" ] || fail "bench created the missing directory of --output"
mkdir -p "$TMP/adir"
expect_error "--output $TMP/adir: " "$LOOM" bench --calibrate --output "$TMP/adir"
[ -z "$(ls -A "$TMP/adir")" ] || fail "bench wrote into the directory given as --output"
finish
