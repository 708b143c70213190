# Checkpoints across processes: a DP2 x TP2 run stopped and resumed matches the straight run exactly (and
# a ZeRO-3 fp16 one, which also continues on one process);
# a checkpoint saved at TP2 resumes at TP1 and at TP4 with the same losses (within 1e-5) as TP2 going on.
source "$(dirname "$0")/loom_mpi_lib.sh"
# Vocabulary padded to 128 for every TP size below (64 x 2 = 32 x 4 = 128), so all layouts hold one model.
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 8
      --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 2 --lr-decay-iters 20 --log-interval 1
      --eval-interval 100 --eval-iters 1 --hidden-dropout 0 --attention-dropout 0 --split 90,5,5 --train-iters 20
      --data-path "$TMP/small_text_document" --vocab-file "$SRC/data/gpt2/vocab.json" --merge-file "$SRC/data/gpt2/merges.txt")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
tp_args() { echo "--tensor-model-parallel-size $1 --make-vocab-size-divisible-by $((128 / $1)) $([ "$1" -gt 1 ] && echo --sequence-parallel)"; }
steps() { grep -oE 'iteration +[0-9]+/.*grad norm: [0-9.]+' "$1" | sed -E 's/elapsed time per iteration \(ms\): [0-9.]+ \| throughput per GPU \(TFLOP\/s\/GPU\): [0-9.]+ \| tokens per second per GPU: [0-9.]+ \| //'; }
losses() { grep -oE 'lm loss: [0-9.E+-]+' "$1" | awk '{print $3}'; }

# DP2 x TP2: straight vs stopped at 10 and resumed.
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" $(tp_args 2) --save "$TMP/straight" > "$TMP/straight.log" 2>&1 || fail "straight"
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" $(tp_args 2) --save "$TMP/split" --exit-interval 10 > "$TMP/a.log" 2>&1 || fail "first half"
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" $(tp_args 2) --save "$TMP/split" --load "$TMP/split" > "$TMP/b.log" 2>&1 || fail "second half"
diff <(steps "$TMP/straight.log") <(cat "$TMP/a.log" "$TMP/b.log" | steps /dev/stdin) > "$TMP/diff" \
  || { fail "DP2 x TP2: resumed run differs"; head -5 "$TMP/diff"; }
for f in shard_tp00_pp000 shard_tp01_pp000; do
  cmp -s "$TMP/straight/iter_0000020/$f.safetensors" "$TMP/split/iter_0000020/$f.safetensors" || fail "DP2 x TP2: $f differs"
done

# ZeRO-3 over DP 4 with fp16 weights: sharded weights, fp32 main weights and moments saved (gathered) and
# resumed (re-sharded) exactly, loss scaler included.
Z=(--zero-stage 3 --fp16 --initial-loss-scale 65536)
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" "${Z[@]}" --save "$TMP/z_straight" > "$TMP/zs.log" 2>&1 || fail "zero straight"
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" "${Z[@]}" --save "$TMP/z_split" --exit-interval 10 > "$TMP/za.log" 2>&1 || fail "zero first half"
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" "${Z[@]}" --save "$TMP/z_split" --load "$TMP/z_split" > "$TMP/zb.log" 2>&1 || fail "zero second half"
diff <(steps "$TMP/zs.log") <(cat "$TMP/za.log" "$TMP/zb.log" | steps /dev/stdin) > "$TMP/diff" \
  || { fail "ZeRO-3 fp16: resumed run differs"; head -5 "$TMP/diff"; }
cmp -s "$TMP/z_straight/iter_0000020/shard_tp00_pp000.safetensors" "$TMP/z_split/iter_0000020/shard_tp00_pp000.safetensors" \
  || fail "ZeRO-3 fp16: final state differs after resuming"
# The ZeRO-3 checkpoint continues on one process (no ZeRO) with the same fp32 main weights.
"$LOOM" train "${ARGS[@]}" --fp16 --initial-loss-scale 65536 --load "$TMP/z_split/iter_0000010" > "$TMP/z1.log" 2>&1 \
  || fail "ZeRO-3 checkpoint on one process"
paste <(losses "$TMP/zb.log") <(losses "$TMP/z1.log") | awk '
  { n++; d = $1 - $2; if (d < 0) d = -d; if (d / $1 > 2e-3) { bad = 1; print "ZeRO-3 -> 1 process: " $1 " vs " $2 } }
  END { exit bad || n < 10 }' || fail "the ZeRO-3 checkpoint continues differently on one process"

# Reshard: the TP2 checkpoint at iteration 10 continues at TP1 and TP4 like TP2 does.
for tp in 1 4; do
  np=$tp
  "${MPI[@]}" -np $np "$LOOM" train "${ARGS[@]}" $(tp_args $tp) --load "$TMP/split/iter_0000010" > "$TMP/tp$tp.log" 2>&1 \
    || { fail "resume at TP $tp"; tail -3 "$TMP/tp$tp.log"; }
  paste <(losses "$TMP/b.log") <(losses "$TMP/tp$tp.log") | awk -v tp=$tp '
    { n++; d = $1 - $2; if (d < 0) d = -d; if (d / $1 > 1e-5) { bad = 1; print "TP " tp ": " $1 " vs " $2 } }
    END { if (n < 10) { print "TP " tp ": only " n " losses"; bad = 1 } exit bad }' || fail "TP2 -> TP$tp losses differ"
done
# Reshard across pipeline stages too: TP2 x PP2 at iteration 10 continues at TP1 x PP1 and at TP4.
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" $(tp_args 2) --pipeline-model-parallel-size 2 --save "$TMP/pp" \
  --exit-interval 10 > "$TMP/pp_a.log" 2>&1 || fail "TP2 x PP2 first half"
"${MPI[@]}" -np 4 "$LOOM" train "${ARGS[@]}" $(tp_args 2) --pipeline-model-parallel-size 2 --load "$TMP/pp" \
  > "$TMP/pp_b.log" 2>&1 || fail "TP2 x PP2 second half"
for tp in 1 4; do
  "${MPI[@]}" -np $tp "$LOOM" train "${ARGS[@]}" $(tp_args $tp) --load "$TMP/pp" > "$TMP/pp_tp$tp.log" 2>&1 \
    || { fail "TP2 x PP2 -> TP$tp"; tail -3 "$TMP/pp_tp$tp.log"; }
  paste <(losses "$TMP/pp_b.log") <(losses "$TMP/pp_tp$tp.log") | awk -v tp=$tp '
    { n++; d = $1 - $2; if (d < 0) d = -d; if (d / $1 > 1e-5) { bad = 1; print "PP2 -> TP " tp ": " $1 " vs " $2 } }
    END { if (n < 10) { print "only " n " losses"; bad = 1 } exit bad }' || fail "TP2 x PP2 -> TP$tp losses differ"
done
# Offline: loom convert --to loom consolidates the TP2 x PP2 checkpoint into one shard that resumes the same.
"$LOOM" convert --load "$TMP/pp/iter_0000010" --to loom --output "$TMP/one_shard" > /dev/null || fail "convert --to loom"
"$LOOM" train "${ARGS[@]}" $(tp_args 1) --load "$TMP/one_shard" > "$TMP/one_shard.log" 2>&1 || fail "resume the consolidated checkpoint"
paste <(losses "$TMP/pp_b.log") <(losses "$TMP/one_shard.log") | awk '
  { n++; d = $1 - $2; if (d < 0) d = -d; if (d / $1 > 1e-5) { bad = 1; print "consolidated: " $1 " vs " $2 } }
  END { exit bad || n < 10 }' || fail "the consolidated checkpoint continues differently"
[ $status -eq 0 ] && echo "all checks passed"
exit $status
