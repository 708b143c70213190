# --optimizer sgd across processes. The layout driver (SGD, momentum 0.9, lr 0.3): ZeRO stages 1-3 over
# data-parallel 2, tensor parallel 2, pipeline parallel 2 and TP2 x DP2 with ZeRO-1 train as one process
# (losses, grad norms and final weights within 1e-5; bf16 with fp32 main weights too). `loom train`: a
# ZeRO-2 DP2 run stopped and resumed equals the straight one bit for bit (the momentum buffers gathered
# into the checkpoint and re-sharded); a TP2 x PP2 checkpoint continues at TP1 on one process, and after
# `loom convert --to loom`, with the same losses (within 1e-5) as TP2 x PP2 going on.
source "$(dirname "$0")/layout_lib.sh"
run sgd_one 1 --sgd 1
for z in 1 2 3; do run "sgd_z${z}_dp2" 2 --sgd 1 --zero $z; done
run sgd_tp2 2 --sgd 1 --tp 2 --sp 1
run sgd_pp2 2 --sgd 1 --pp 2 --layers 2
run sgd_z1_dp2_tp2 4 --sgd 1 --zero 1 --tp 2
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 8 "$TMP/sgd_one.st" "$TMP"/sgd_z*.st "$TMP"/sgd_tp2.st "$TMP"/sgd_pp2.st || status=1
run sgd_bf16_one 1 --sgd 1 --precision bf16
run sgd_bf16_z2_dp2 2 --sgd 1 --precision bf16 --zero 2
/usr/bin/python3 "$HERE/compare_layouts.py" 1e-5 8 "$TMP/sgd_bf16_one.st" "$TMP/sgd_bf16_z2_dp2.st" || status=1

: "${LOOM:?}" "${LOOM_SOURCE_DIR:?}"
SRC=$LOOM_SOURCE_DIR
head -n 40 "$SRC/data/corpus/kjv.jsonl" > "$TMP/small.jsonl"
"$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/small" --vocab-file "$SRC/data/gpt2/vocab.json" \
  --merge-file "$SRC/data/gpt2/merges.txt" --append-eod --workers 1 >/dev/null || { echo "FAIL: preprocess"; status=1; }
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 8
      --lr 0.05 --min-lr 0.005 --lr-decay-style cosine --lr-warmup-iters 2 --lr-decay-iters 20 --log-interval 1
      --eval-iters 0 --hidden-dropout 0 --attention-dropout 0 --split 100,0,0 --train-iters 20
      --optimizer sgd --sgd-momentum 0.9 --make-vocab-size-divisible-by 64
      --data-path "$TMP/small_text_document" --vocab-file "$SRC/data/gpt2/vocab.json" --merge-file "$SRC/data/gpt2/merges.txt")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
fail() { echo "FAIL: $*"; status=1; }
steps() { grep -oE 'iteration +[0-9]+/.*grad norm: [0-9.]+' "$1" | sed -E 's/elapsed time.*learning rate/learning rate/'; }
losses() { grep -oE 'lm loss: [0-9.E+-]+' "$1" | awk '{print $3}'; }
close() {  # close A B NAME: the losses of two logs within 1e-5 relative, at least 10 of them
  paste <(losses "$1") <(losses "$2") | awk -v name="$3" '
    { n++; d = $1 - $2; if (d < 0) d = -d; if (d / $1 > 1e-5) { bad = 1; print name ": " $1 " vs " $2 } }
    END { if (n < 10) { print name ": only " n " losses"; bad = 1 } exit bad }' || fail "$3: losses differ"
}

Z=(--zero-stage 2)
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "${Z[@]}" --save "$TMP/z_straight" > "$TMP/zs.log" 2>&1 || fail "ZeRO-2 straight"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "${Z[@]}" --save "$TMP/z_split" --exit-interval 10 > "$TMP/za.log" 2>&1 || fail "ZeRO-2 first half"
"${MPI[@]}" -np 2 "$LOOM" train "${ARGS[@]}" "${Z[@]}" --save "$TMP/z_split" --load "$TMP/z_split" > "$TMP/zb.log" 2>&1 || fail "ZeRO-2 second half"
diff <(steps "$TMP/zs.log") <(cat "$TMP/za.log" "$TMP/zb.log" | steps /dev/stdin) > "$TMP/diff" \
  || { fail "ZeRO-2 DP2 SGD: resumed run differs"; head -4 "$TMP/diff"; }
cmp -s "$TMP/z_straight/iter_0000020/shard_tp00_pp000.safetensors" "$TMP/z_split/iter_0000020/shard_tp00_pp000.safetensors" \
  || fail "ZeRO-2 DP2 SGD: final weights and momentum buffers differ after resuming"

L=(--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2)
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" "${L[@]}" --save "$TMP/pp" --exit-interval 10 > "$TMP/pp_a.log" 2>&1 || fail "TP2 x PP2 first half"
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" "${L[@]}" --load "$TMP/pp" > "$TMP/pp_b.log" 2>&1 || fail "TP2 x PP2 second half"
"$LOOM" train "${ARGS[@]}" --load "$TMP/pp" > "$TMP/pp_tp1.log" 2>&1 || fail "TP2 x PP2 -> TP1"
close "$TMP/pp_b.log" "$TMP/pp_tp1.log" "SGD TP2 x PP2 -> TP1"
"$LOOM" convert --load "$TMP/pp/iter_0000010" --to loom --output "$TMP/one_shard" > /dev/null || fail "convert --to loom"
"$LOOM" train "${ARGS[@]}" --load "$TMP/one_shard" > "$TMP/one_shard.log" 2>&1 || fail "resume the consolidated checkpoint"
close "$TMP/pp_b.log" "$TMP/one_shard.log" "SGD consolidated"
[ $status -eq 0 ] && echo "all SGD layout checks passed"
exit $status
