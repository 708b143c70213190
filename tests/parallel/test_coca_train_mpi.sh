# `mpirun -np 2 loom train --model coca` configured as log 000 (its DeepSpeed JSON: fp16 with the dynamic
# loss scale from 65536, FusedLamb, ZeRO-1, gradient clipping 5, the flops profiler's wall-clock lines;
# EVA-CLIP's layer decay 0.75 and per-tower lrs; per-block recompute): every rank logs its start-up lines,
# rank 0 alone the step, timer and evaluation lines (zero-shot classification and retrieval), and the epoch
# checkpoint is written once.
set -u
: "${MPIRUN:?}" "${LOOM:?}" "${LOOM_SOURCE_DIR:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
"$LOOM" make-images --output "$TMP/shapes" --num-train 48 --num-val 16 --image-size 32 --seed 1 >/dev/null || fail "make-images"
/usr/bin/python3 "$LOOM_SOURCE_DIR/scripts/clip_merges_from_captions.py" "$TMP/bpe.txt.gz" "$TMP/shapes/train.jsonl" >/dev/null ||
  fail "vocabulary"
cat > "$TMP/ds.json" <<'JSON'
{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 1, "steps_per_print": 1000,
 "zero_allow_untested_optimizer": true,
 "fp16": {"enabled": true, "loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000, "hysteresis": 2, "min_loss_scale": 1},
 "bf16": {"enabled": false}, "flops_profiler": {"enabled": true},
 "optimizer": {"type": "LAMB", "params": {"bias_correction": true, "betas": [0.9, 0.999], "eps": 1e-08, "max_coeff": 10, "min_coeff": 0.01, "eps_inside_sqrt": false}},
 "gradient_clipping": 5, "zero_optimization": {"stage": 1, "reduce_bucket_size": 5.000000e+08}}
JSON
timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 "$LOOM" train --model coca --image-size 32 --patch-size 8 \
  --vision-width 32 --vision-layers 1 --vision-heads 2 --vision-mlp-hidden 64 --text-width 32 --text-layers 1 --text-heads 2 \
  --text-mlp-hidden 64 --decoder-layers 1 --pooler-queries 4 --pooler-heads 2 --embed-dim 32 --text-context-length 16 \
  --text-vocab-size 566 --tokenizer-model "$TMP/bpe.txt.gz" --workers 1 --log-every-n-steps 1 --logs "$TMP/logs" --name ds \
  --seed 3 --train-data "$TMP/shapes/train.jsonl" --val-data "$TMP/shapes/val.jsonl" --epochs 1 --deepspeed-config "$TMP/ds.json" \
  --grad-checkpointing --visual-ld 0.75 --text-ld 0.75 --text-decoder-ld 0.75 --visual-lr 2e-4 --text-lr 2e-5 \
  --text-decoder-lr 2e-5 --zeroshot-frequency 1 --zeroshot-classes "$TMP/shapes/classes.json" > "$TMP/out.log" 2>&1 || { fail "mpirun exited non-zero"; tail -20 "$TMP/out.log"; }
count() { grep -cE "$1" "$TMP/out.log"; }
[ "$(count 'Running in distributed mode with multiple processes. Device: cpu.Process \(global: [01], local [01]\), total 2.')" -eq 2 ] ||
  fail "expected one 'Running in distributed mode' line per rank"
[ "$(count '\| INFO \| number of total params: ')" -eq 2 ] || fail "expected the parameter counts from each rank"
[ "$(count '\| INFO \| Global Steps: [0-9]+ Train Epoch: 0 ')" -eq 3 ] || fail "expected 3 step lines (rank 0 only)"
grep -qE 'Loss Scaler: 65536\. \(6\.554e\+04\)' "$TMP/out.log" || fail "no fp16 loss scale of 65536 in the step line"
[ "$(count '\[INFO\] \[logging.py:77:log_dist\] \[Rank 0\] rank=0 time \(ms\) \| forward: ')" -eq 3 ] ||
  fail "expected DeepSpeed's wall-clock line once per step"
[ "$(count 'Starting zero-shot imagenet\.')" -eq 1 ] || fail "expected zero-shot classification on rank 0 only"
[ "$(count 'Eval Epoch: 1 epoch: 1\.0000	imagenet-zeroshot-val-top1: [0-9.]+	imagenet-zeroshot-val-top5: [0-9.]+	image_to_text_mean_rank')" -eq 1 ] ||
  fail "expected one evaluation line (zero-shot, then retrieval)"
grep -q 'num of optimizer.param_groups: 17' "$TMP/out.log" || fail "expected 17 parameter groups (layer decay on 3 towers)"
[ -f "$TMP/logs/ds/checkpoints/epoch_1/model.safetensors" ] || fail "no epoch_1 checkpoint"
[ $status -eq 0 ] && echo "CoCa under mpirun with log 000's DeepSpeed configuration: all checks passed"
exit $status
