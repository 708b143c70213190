# --optimizer sgd (Megatron's torch.optim.SGD with --sgd-momentum) on one process: a resumed run equals the
# straight one bit for bit (the momentum buffer is in the checkpoint, as optim/momentum_buffer/<name>), in
# fp32 and in fp16 (loss scaling, fp32 main weights); the thread count changes nothing; an SGD checkpoint
# does not load into Adam; bad values are one error line.
set -e
source "$(dirname "$0")/lib.sh"
corpus small 40
ARGS=(--num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --lr 0.05 --min-lr 0.005 --lr-decay-style cosine --lr-warmup-iters 3 --lr-decay-iters 20 --log-interval 1
      --eval-iters 0 --hidden-dropout 0.1 --attention-dropout 0.1 --split 100,0,0 --seed 5 --train-iters 20
      --optimizer sgd --sgd-momentum 0.8 --weight-decay 0.01 --clip-grad 0.5
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
fields() { grep -oE 'iteration +[0-9]+/.*' "$1" | sed -E 's/elapsed time.*learning rate/learning rate/'; }

for prec in fp32 fp16; do
  P=()
  [ $prec = fp16 ] && P=(--fp16 --initial-loss-scale 65536)
  run "$LOOM" train "${ARGS[@]}" "${P[@]}" --save "$TMP/$prec-straight"
  [ "$CODE" -eq 0 ] || fail "$prec straight run"
  cp "$TMP/out" "$TMP/$prec-straight.log"
  run "$LOOM" train "${ARGS[@]}" "${P[@]}" --save "$TMP/$prec-split" --exit-interval 10
  cp "$TMP/out" "$TMP/$prec-half.log"
  run "$LOOM" train "${ARGS[@]}" "${P[@]}" --save "$TMP/$prec-split" --load "$TMP/$prec-split"
  [ "$CODE" -eq 0 ] || fail "$prec second half"
  diff <(fields "$TMP/$prec-straight.log") <(cat "$TMP/$prec-half.log" "$TMP/out" | fields /dev/stdin) > "$TMP/diff" \
    || { fail "$prec: resumed SGD run differs"; head -4 "$TMP/diff"; }
  cmp -s "$TMP/$prec-straight/iter_0000020/shard_tp00_pp000.safetensors" "$TMP/$prec-split/iter_0000020/shard_tp00_pp000.safetensors" \
    || fail "$prec: final weights and momentum buffers differ after resuming"
done
# SGD trains: the loss fell.
first=$(fields "$TMP/fp32-straight.log" | head -1 | grep -oE 'lm loss: [0-9.E+-]+' | grep -oE '[0-9.]+E[-+][0-9]+')
last=$(fields "$TMP/fp32-straight.log" | tail -1 | grep -oE 'lm loss: [0-9.E+-]+' | grep -oE '[0-9.]+E[-+][0-9]+')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.3) }' || fail "SGD loss did not fall by 0.3 nat ($first -> $last)"

# The checkpoint holds SGD's state under torch's name, and says so.
/usr/bin/python3 - "$TMP/fp32-split/iter_0000020/metadata.json" <<'PY' || fail "checkpoint metadata"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["optimizer"] == "sgd", m.get("optimizer")
keys = set(m["tensors"])
model = {k[len("model/"):] for k in keys if k.startswith("model/")}
buf = {k[len("optim/momentum_buffer/"):] for k in keys if k.startswith("optim/momentum_buffer/")}
assert model and buf == model, (len(model), len(buf))
assert not any(k.startswith("optim/exp_avg") for k in keys)
PY

# Threads: the same run on 1 and 2 threads.
OMP_NUM_THREADS=1 run "$LOOM" train "${ARGS[@]}" --train-iters 6
cp "$TMP/out" "$TMP/t1.log"
OMP_NUM_THREADS=2 run "$LOOM" train "${ARGS[@]}" --train-iters 6
diff <(fields "$TMP/t1.log") <(fields "$TMP/out") >/dev/null || fail "SGD run depends on the thread count"

# Another optimizer's checkpoint, and bad values.
expect_error "holds the SGD optimizer's momentum buffer, this run has --optimizer adam or lamb" \
  "$LOOM" train "${ARGS[@]}" --optimizer adam --train-iters 21 --load "$TMP/fp32-split"
run "$LOOM" train "${ARGS[@]}" --optimizer adam --train-iters 21 --load "$TMP/fp32-split" --no-load-optim
[ "$CODE" -eq 0 ] || fail "--no-load-optim: an SGD checkpoint's weights into Adam"
expect_error "--sgd-momentum must be >= 0 (got -0.5)" "$LOOM" train "${ARGS[@]}" --sgd-momentum -0.5
expect_error "--offload-optimizer nvme streams Adam's and LAMB's moments: it does not take --optimizer sgd" \
  "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path "$TMP/nvme"
finish
