# --deepspeed-config: a DeepSpeed JSON sets ZeRO, fp16 loss scaling, the optimizer, clipping and the batch sizes (flags
# given explicitly win), and a bad or unsupported config is one error line.
set -e
source "$(dirname "$0")/lib.sh"
corpus c 30
cat > "$TMP/ds.json" <<'JSON'
{
  "train_batch_size": 8,
  "train_micro_batch_size_per_gpu": 2,
  "gradient_accumulation_steps": 4,
  "gradient_clipping": 0.5,
  "zero_optimization": {"stage": 3, "reduce_bucket_size": 5e8, "offload_optimizer": {"device": "cpu"}},
  "optimizer": {"type": "Lamb", "params": {"lr": 0.002, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.05}},
  "fp16": {"enabled": true, "loss_scale": 0, "initial_scale_power": 12, "loss_scale_window": 500, "hysteresis": 3,
           "min_loss_scale": 2}
}
JSON
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --train-iters 3 --lr 1e-3 --eval-iters 0
      --log-interval 1 --data-path "$TMP/c_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
run "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/ds.json"
[ "$CODE" -eq 0 ] || fail "train with a DeepSpeed config"
expect_line "  micro_batch_size ................................ 2"
expect_line "  global_batch_size ............................... 8"
expect_line "  zero_stage ...................................... 3"
expect_line "  optimizer ....................................... lamb"
expect_line "  lr .............................................. 0.001"  # the explicit --lr wins
expect_line "  adam_beta1 ...................................... 0.8"
expect_line "  adam_beta2 ...................................... 0.99"
expect_line "  adam_eps ........................................ 1e-06"
expect_line "  weight_decay .................................... 0.05"
expect_line "  params_dtype .................................... torch.float16"
expect_line "  clip_grad ....................................... 0.5"
expect_line "  fp16 ............................................ True"
expect_line "  initial_loss_scale .............................. 4096.0"
expect_line "  hysteresis ...................................... 3"
expect_line "  loss_scale_window ............................... 500"
expect_line "  ddp_bucket_size ................................. 500000000"
expect_line "setting number of micro-batches to constant 4"
grep -q "loss scale: 4096.0" <<<"$OUT" || fail "the initial scale 2^12 shows in the log"
run "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/ds.json" --clip-grad 2.0
expect_line "  clip_grad ....................................... 2.0"
echo '{"zero_optimization": {"offload_optimizer": {"device": "nvme"}}}' > "$TMP/nvme.json"
expect_error "--offload-optimizer nvme needs --offload-path" \
  "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/nvme.json"
echo '{"train_batch_size": 12, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4}' > "$TMP/bad.json"
expect_error "train_batch_size (12) is not train_micro_batch_size_per_gpu x gradient_accumulation_steps x data-parallel size (8)" \
  "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/bad.json"
# DeepSpeed 0.3's "cpu_offload": true (reference log 001) is offload_optimizer.device cpu; keys Loom does not know
# are warned about by name, once, on stderr.
echo '{"zero_optimization": {"stage": 2, "cpu_offload": true, "mystery": 1}, "sparse_attention": {"mode": "fixed"}}' \
  > "$TMP/legacy.json"
run "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/legacy.json"
[ "$CODE" -eq 0 ] || fail "train with a DeepSpeed 0.3 config"
grep -qE '^  offload_optimizer \.+ cpu$' <<<"$OUT" || fail "cpu_offload: true is offload_optimizer cpu"
expect_line "  zero_stage ...................................... 2"
[ "$ERR" = "loom: warning: $TMP/legacy.json: unknown key 'sparse_attention' (Loom does not know it; it has no effect)
loom: warning: $TMP/legacy.json: unknown key 'zero_optimization.mystery' (Loom does not know it; it has no effect)" ] ||
  fail "the unknown keys are warned about by name"
# DeepSpeed's own lines, in log 001's formats. The engine configuration and the JSON for log 001's config on one
# rank equal the log's (tests/data/megatron_seeds/001.deepspeed_config_dump) but for the world size, the batch
# DeepSpeed derives from it, TensorBoard's replaced path and the Python object DeepSpeed prints by address.
SEED=$SRC/tests/data/megatron_seeds
sed "s|/home/cc/bert|$TMP/bert|" "$SEED/001.ds_config.json" > "$TMP/ds001.json"
run "$LOOM" train "${ARGS[@]}" --batch-size 4 --fp16 --deepspeed --deepspeed_config "$TMP/ds001.json"
[ "$CODE" -eq 0 ] || fail "train with log 001's DeepSpeed config"
TS='\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}\] \[INFO\] '
grep -qE "^${TS}\[config.py:644:print\] DeepSpeedEngine configuration:$" <<<"$OUT" || fail "the configuration header"
[ "$(grep -cE "^${TS}\[config.py:648:print\]   ?[a-z_0-9]+ \.* ?" <<<"$OUT")" -eq 37 ] || fail "37 configuration rows"
# from the header to the end of the JSON (zero_config's closing brace comes first)
sed -n '/DeepSpeedEngine configuration:/,$p' <<<"$OUT" | awk '/json = \{/{j=1} {print} j&&/^}$/{exit}' |
  sed -E 's/^\[[^]]*\] \[INFO\] \[[^]]*\] //' > "$TMP/dump"
grep -vE '^  (activation_checkpointing_config|train_batch_size|world_size|tensorboard_output_path) ' \
  "$SEED/001.deepspeed_config_dump" | sed "s|/home/cc/bert|$TMP/bert|" > "$TMP/want"
grep -vE '^  (train_batch_size|world_size|tensorboard_output_path) ' "$TMP/dump" > "$TMP/got"
diff "$TMP/want" "$TMP/got" > "$TMP/diff" || fail "the configuration dump differs from log 001's: $(head -20 "$TMP/diff")"
grep -qE "^${TS}\[config.py:648:print\]   train_batch_size \.+ 96$" <<<"$OUT" ||
  fail "train_batch_size is DeepSpeed's: the JSON's micro batch 96 x 1 x 1 rank"
# steps_per_print and wall_clock_breakdown: a step line, SamplesPerSec and the per-step ZeRO timers.
sed 's|"steps_per_print":100|"steps_per_print":2|; s|"wall_clock_breakdown":false|"wall_clock_breakdown":true|' \
  "$TMP/ds001.json" > "$TMP/ds_steps.json"
run "$LOOM" train "${ARGS[@]}" --train-iters 4 --batch-size 4 --fp16 --deepspeed --deepspeed_config "$TMP/ds_steps.json"
[ "$CODE" -eq 0 ] || fail "train with steps_per_print 2"
[ "$(grep -cE '^rank=0 time \(ms\) \| optimizer_gradients: [0-9]+\.[0-9]{2} \| optimizer_step: [0-9]+\.[0-9]{2} \| optimizer_allgather: [0-9]+\.[0-9]{2}$' <<<"$OUT")" -eq 4 ] ||
  fail "one ZeRO timer line per step"
for step in 2 4; do
  grep -qE "^${TS}\[logging.py:60:log_dist\] \[Rank 0\] step=${step}, skipped=0, lr=\[[0-9.e+-]+, [0-9.e+-]+\], mom=\[\(0.9, 0.999\), \(0.9, 0.999\)\]$" <<<"$OUT" ||
    fail "the step=$step line"
  grep -qE "^${TS}\[timer.py:166:stop\] 0/${step}, SamplesPerSec=[0-9.e+-]+$" <<<"$OUT" || fail "SamplesPerSec at step $step"
done
# The learning rate of step 2 as Python prints it (1e-3 decayed linearly over 4 iterations: 5e-4).
grep -qF "step=2, skipped=0, lr=[0.0005, 0.0005]" <<<"$OUT" || fail "the step line's learning rate"

echo '{"fp16": ' > "$TMP/broken.json"
echo '{"optimizer": {"type": "SGD"}}' > "$TMP/sgd.json"
expect_error "$TMP/sgd.json: optimizer.type 'SGD' is not one of Adam, AdamW, Lamb" "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/sgd.json"
# (--optimizer sgd itself is implemented now: tests/cli/test_sgd.sh.)
expect_error "$TMP/broken.json: malformed JSON" "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/broken.json"
expect_error "cannot open --deepspeed-config $TMP/none.json" "$LOOM" train "${ARGS[@]}" --deepspeed-config "$TMP/none.json"
finish
