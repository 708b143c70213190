# fp16 tracks fp32 (issue 13): the same small CoCa trained 100 steps twice by `loom train` with log 000's
# DeepSpeed JSON (FusedLamb, gradient clipping 5), once with its fp16 section (fp16 weights and
# activations, fp32 main weights, dynamic loss scale from 2^16, window 1000, hysteresis 2) and once with
# fp16 disabled; the runs see the same batches and crops. Every step's logged Loss, Loss(CLIP) and
# Loss(CoCa) (the step's value, not the running average) of the fp16 run is within 2% relative of the fp32
# run's. The learning rate is high enough that the losses fall to well under half in those 100 steps, so
# the comparison is of two trajectories, not of two initial losses.
set -e
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

"$LOOM" make-images --output "$TMP/shapes" --num-train 200 --num-val 8 --image-size 32 --seed 1 >/dev/null
/usr/bin/python3 "$SRC/scripts/clip_merges_from_captions.py" "$TMP/bpe.txt.gz" "$TMP/shapes/train.jsonl" >/dev/null
for fp16 in true false; do
  cat > "$TMP/ds_$fp16.json" <<JSON
{"train_batch_size": 8, "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 1, "steps_per_print": 1000,
 "zero_allow_untested_optimizer": true,
 "fp16": {"enabled": $fp16, "loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000, "hysteresis": 2, "min_loss_scale": 1},
 "bf16": {"enabled": false},
 "optimizer": {"type": "LAMB", "params": {"bias_correction": true, "betas": [0.9, 0.999], "eps": 1e-08, "max_coeff": 10, "min_coeff": 0.01, "eps_inside_sqrt": false}},
 "gradient_clipping": 5, "zero_optimization": {"stage": 0}}
JSON
  # 200 images, batch 8: 25 steps an epoch, 4 epochs = 100 steps.
  run "$LOOM" train --model coca --image-size 32 --patch-size 8 --vision-width 32 --vision-layers 1 --vision-heads 2 \
    --vision-mlp-hidden 64 --text-width 32 --text-layers 1 --text-heads 2 --text-mlp-hidden 64 --decoder-layers 1 \
    --pooler-queries 4 --pooler-heads 2 --embed-dim 32 --text-context-length 16 --text-vocab-size 566 \
    --tokenizer-model "$TMP/bpe.txt.gz" --workers 1 --log-every-n-steps 1 --logs "$TMP/logs" --name "fp16_$fp16" --seed 3 \
    --train-data "$TMP/shapes/train.jsonl" --epochs 4 --save-frequency 100 --lr 2e-2 --warmup 10 \
    --deepspeed-config "$TMP/ds_$fp16.json"
  [ "$CODE" -eq 0 ] || fail "the fp16=$fp16 run exited $CODE"
  echo "$OUT" > "$TMP/out_$fp16.log"
done

/usr/bin/python3 - "$TMP/out_false.log" "$TMP/out_true.log" <<'PYEOF' || fail "fp16 does not track fp32 within 2%"
import re, sys
line = re.compile(r"Global Steps: (\d+) .* Loss: ([0-9.]+) \(.*Loss\(CLIP\): ([0-9.]+) \(.*Loss\(CoCa\): ([0-9.]+) \("
                  r".* Loss Scaler: ([0-9.e+]+) ")
def parse(path):
    return [m.groups() for m in map(line.search, open(path)) if m]
fp32, fp16 = parse(sys.argv[1]), parse(sys.argv[2])
assert [int(r[0]) for r in fp32] == list(range(1, 101)), "fp32: expected step lines 1..100"
assert [int(r[0]) for r in fp16] == list(range(1, 101)), "fp16: expected step lines 1..100"
assert all(r[4] == "1.0000" for r in fp32), "the fp32 run has a loss scale"
assert all(float(r[4]) >= 1 and r[4] != "1.0000" for r in fp16), "the fp16 run has no dynamic loss scale"
assert fp16[0][4] == "65536.", fp16[0][4]
assert float(fp32[-1][1]) < 0.5 * float(fp32[0][1]), ("the loss did not fall", fp32[0][1], fp32[-1][1])
assert any(a[1:4] != b[1:4] for a, b in zip(fp32, fp16)), "fp16 logged exactly the fp32 losses: fp16 not in effect?"
worst = (0.0, None)
for a, b in zip(fp32, fp16):
    for k, name in ((1, "Loss"), (2, "Loss(CLIP)"), (3, "Loss(CoCa)")):
        rel = abs(float(b[k]) - float(a[k])) / abs(float(a[k]))
        if rel > worst[0]:
            worst = (rel, "step %s %s: fp32 %s fp16 %s" % (a[0], name, a[k], b[k]))
print("fp16 vs fp32 over 100 steps: worst relative deviation %.2e (%s); Loss %s -> %s"
      % (worst[0], worst[1], fp32[0][1], fp32[-1][1]))
sys.exit(0 if worst[0] < 0.02 else 1)
PYEOF
finish
