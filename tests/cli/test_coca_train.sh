# `loom train --model coca` end to end on a synthetic image-caption set: EVA-CLIP's log lines, retrieval
# evaluation and epoch checkpoints; a run stopped mid-epoch and resumed ends byte-identical to one that
# was not; an index with unreadable images (truncated, missing) trains exactly as its readable subset and
# counts them; SIGHUP stops with a checkpoint; bad input is one error line, exit 2.
set -e
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=2

"$LOOM" make-images --output "$TMP/shapes" --num-train 48 --num-val 16 --image-size 32 --seed 1 >/dev/null
SMALL=(--model coca --image-size 32 --patch-size 8 --vision-width 32 --vision-layers 1 --vision-heads 2
       --vision-mlp-hidden 64 --text-width 32 --text-layers 1 --text-heads 2 --text-mlp-hidden 64 --decoder-layers 1
       --pooler-queries 4 --pooler-heads 2 --embed-dim 32 --text-context-length 16 --text-vocab-size 50257
       --tokenizer-type GPT2BPETokenizer --vocab-file "$VOCAB" --merge-file "$MERGES"
       --batch-size 8 --lr 1e-3 --warmup 2 --workers 1 --log-every-n-steps 1 --logs "$TMP/logs" --seed 3)

run "$LOOM" train "${SMALL[@]}" --train-data "$TMP/shapes/train.jsonl" --val-data "$TMP/shapes/val.jsonl" --epochs 2 --name a
[ "$CODE" -eq 0 ] || fail "training exited $CODE"
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2},[0-9:]{8} \| INFO \| Global Steps: 1 Train Epoch: 0 \[ *8/48 \(17%\)\] Loss: ' <<<"$OUT" ||
  fail "no EVA-CLIP Global Steps line for step 1"
[ "$(grep -c 'Global Steps: ' <<<"$OUT")" -eq 12 ] || fail "expected 12 step lines (6 batches x 2 epochs)"
grep -q '| INFO | Eval Epoch: 2 image_to_text_mean_rank: ' <<<"$OUT" || fail "no retrieval evaluation line"
grep -q '| INFO | number of total params: ' <<<"$OUT" || fail "no parameter count line"
[ -f "$TMP/logs/a/checkpoints/epoch_2/model.safetensors" ] || fail "no epoch_2 checkpoint"
cmp -s <(grep 'Global Steps' "$TMP/logs/a/out.log") <(grep 'Global Steps' <<<"$OUT") || fail "out.log lacks the console's lines"

# --report-to tensorboard: EVA-CLIP's train/* scalars at every step line, equal to the line's values.
run "$LOOM" train "${SMALL[@]}" --train-data "$TMP/shapes/train.jsonl" --epochs 1 --name tb --report-to tensorboard
[ "$CODE" -eq 0 ] || fail "the TensorBoard run exited $CODE"
(cd "$SRC/tests/cli" && /usr/bin/python3 - "$TMP/logs/tb" <<'PYEOF') || fail "TensorBoard scalars differ from the log lines"
import re, sys
from tfevents import read_dir, scalars
s = scalars(read_dir(sys.argv[1] + "/tensorboard"))
want = {"train/" + k for k in ("loss", "loss_clip", "loss_caption", "loss_scaler", "grad_nrom", "data_time",
        "batch_time", "samples_per_scond", "scale", "lr", "lr_visual", "lr_text", "lr_text_decoder")}
assert want <= set(s), sorted(set(s))
lines = [l for l in open(sys.argv[1] + "/out.log") if "Global Steps: " in l]
for tag, field in (("train/loss", "Loss"), ("train/loss_clip", r"Loss\(CLIP\)"), ("train/grad_nrom", "Grad Norm")):
    logged = [float(re.search(field + r": ([0-9.]+) ", l).group(1)) for l in lines]
    steps, values = zip(*s[tag])
    assert list(steps) == list(range(len(lines))), (tag, steps)
    for v, w in zip(values, logged):
        assert abs(v - w) <= 1e-4 * abs(w) + 1e-3, (tag, v, w)
print("TensorBoard: %d tags, %d steps, equal to the log lines" % (len(s), len(lines)))
PYEOF

# Stopped after 8 steps (mid epoch 1), resumed: the same final weights and optimizer state, byte for byte.
run "$LOOM" train "${SMALL[@]}" --train-data "$TMP/shapes/train.jsonl" --epochs 2 --name b --max-steps 8
[ "$CODE" -eq 0 ] || fail "the stopped run exited $CODE"
[ -f "$TMP/logs/b/checkpoints/step_8/state.json" ] || fail "no step_8 checkpoint"
run "$LOOM" train "${SMALL[@]}" --train-data "$TMP/shapes/train.jsonl" --epochs 2 --name b --resume latest
[ "$CODE" -eq 0 ] || fail "the resumed run exited $CODE"
run "$LOOM" train "${SMALL[@]}" --train-data "$TMP/shapes/train.jsonl" --epochs 2 --name c
for f in model.safetensors optimizer.safetensors; do
  cmp -s "$TMP/logs/b/checkpoints/epoch_2/$f" "$TMP/logs/c/checkpoints/epoch_2/$f" || fail "resumed $f differs from the uninterrupted run's"
done

# Unreadable images: 3 of 48 truncated, 1 missing. The run equals the run on the index without them (with a
# warm-up longer than the run: EVA-CLIP's schedule counts the index's entries, readable or not).
cp -r "$TMP/shapes" "$TMP/bad"
for n in 000003 000017 000030; do head -c 300 "$TMP/shapes/train_$n.jpg" > "$TMP/bad/train_$n.jpg"; done
rm "$TMP/bad/train_000041.jpg"
grep -v -e train_000003 -e train_000017 -e train_000030 -e train_000041 "$TMP/bad/train.jsonl" > "$TMP/bad/clean.jsonl"
run "$LOOM" train "${SMALL[@]}" --train-data "$TMP/bad/train.jsonl" --epochs 1 --name bad --warmup 1000
[ "$CODE" -eq 0 ] || fail "the run over unreadable images exited $CODE"
[ "$(grep -c 'skipping unreadable image' <<<"$OUT$ERR")" -eq 4 ] || fail "expected 4 skip lines"
grep -q 'skipped unreadable images so far: 4' <<<"$OUT" || fail "no skipped count"
run "$LOOM" train "${SMALL[@]}" --train-data "$TMP/bad/clean.jsonl" --epochs 1 --name clean --warmup 1000
cmp -s "$TMP/logs/bad/checkpoints/epoch_1/model.safetensors" "$TMP/logs/clean/checkpoints/epoch_1/model.safetensors" ||
  fail "the run over unreadable images differs from the run over the readable subset"

# SIGHUP (log 000's end): a checkpoint after the current step, exit 0.
set +e
"$LOOM" train "${SMALL[@]}" --train-data "$TMP/shapes/train.jsonl" --epochs 1000 --name hup >"$TMP/hup.log" 2>&1 &
pid=$!
for _ in $(seq 200); do grep -q 'Global Steps: 2 ' "$TMP/hup.log" && break; sleep 0.1; done
kill -HUP $pid
wait $pid
CODE=$?
set -e
[ "$CODE" -eq 0 ] || fail "SIGHUP: exit $CODE"
grep -q 'Stopping after receiving a termination signal' "$TMP/hup.log" || fail "SIGHUP: no stop line"
ls "$TMP/logs/hup/checkpoints" | grep -q '^step_' || fail "SIGHUP: no checkpoint"

# Bad input.
expect_error "does not exist" "$LOOM" train "${SMALL[@]}" --train-data "$TMP/nowhere.jsonl" --name e1
printf '{"image": "train_000001.jpg"}\n' > "$TMP/nocaption.jsonl"
expect_error "caption" "$LOOM" train "${SMALL[@]}" --train-data "$TMP/nocaption.jsonl" --name e2
expect_error "--image-size 30 is not divisible by --patch-size 8" "$LOOM" train "${SMALL[@]}" --image-size 30 \
  --train-data "$TMP/shapes/train.jsonl" --name e3
expect_error "Experiment already exists" "$LOOM" train "${SMALL[@]}" --train-data "$TMP/shapes/train.jsonl" --name a
# DeepSpeed JSONs DeepSpeed itself would reject.
echo '{"train_batch_size": 12, "train_micro_batch_size_per_gpu": 8}' > "$TMP/ds_batch.json"
expect_error "train_batch_size 12 is not train_micro_batch_size_per_gpu 8 x 1 ranks" "$LOOM" train "${SMALL[@]}" \
  --train-data "$TMP/shapes/train.jsonl" --name e4 --deepspeed-config "$TMP/ds_batch.json"
echo '{"optimizer": {"type": "LAMB", "params": {"max_grad_norm": 1.0}}}' > "$TMP/ds_lamb.json"
expect_error "max_grad_norm (FusedLamb's own clipping) is not supported" "$LOOM" train "${SMALL[@]}" \
  --train-data "$TMP/shapes/train.jsonl" --name e5 --deepspeed-config "$TMP/ds_lamb.json"
echo '{"optimizer": {"type": "SGD"}}' > "$TMP/ds_sgd.json"
expect_error "optimizer.type 'SGD': Loom's CoCa run has Lamb, Adam and AdamW" "$LOOM" train "${SMALL[@]}" \
  --train-data "$TMP/shapes/train.jsonl" --name e6 --deepspeed-config "$TMP/ds_sgd.json"
echo '{"steps_per_print": "often"}' > "$TMP/ds_spp.json"
expect_error "steps_per_print must be an integer (steps between DeepSpeed's progress lines)" "$LOOM" train "${SMALL[@]}" \
  --train-data "$TMP/shapes/train.jsonl" --name e7 --deepspeed-config "$TMP/ds_spp.json"
expect_error "--dataset-type json is an image-caption index: it trains --model coca" "$LOOM" train --dataset-type json \
  --train-data "$TMP/shapes/train.jsonl"
finish
