# The learning-rate schedule of a resumed run (Megatron's OptimizerParamScheduler.load_state_dict): a
# checkpoint records max/min lr, warmup and decay steps and the decay style; --use-checkpoint-lr-scheduler
# takes them (the learning-rate column goes on as the checkpoint's run), --override-lr-scheduler takes the
# command line's (as a straight run with the new flags), with Megatron's lines; neither: the command line's
# with a warning naming each difference; both: an error. A checkpoint saved without the record still loads.
set -e
source "$(dirname "$0")/lib.sh"
corpus small 40
ARGS=(--num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --log-interval 1 --eval-iters 0 --split 100,0,0 --seed 5 --train-iters 20
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
OLD=(--lr 3e-3 --min-lr 3e-4 --lr-warmup-iters 3 --lr-decay-iters 20 --lr-decay-style cosine)
NEW=(--lr 6e-3 --min-lr 1e-4 --lr-warmup-iters 2 --lr-decay-iters 16 --lr-decay-style linear)
lrs() { grep -oE 'iteration +[0-9]+/ +[0-9]+ \|.*learning rate: [0-9.E+-]+' "$1" | sed -E 's/ \|.*learning rate:/ lr/' \
          | awk '$2+0 > 10'; }

run "$LOOM" train "${ARGS[@]}" "${OLD[@]}"
cp "$TMP/out" "$TMP/old.log"
run "$LOOM" train "${ARGS[@]}" "${NEW[@]}"
cp "$TMP/out" "$TMP/new.log"
run "$LOOM" train "${ARGS[@]}" "${OLD[@]}" --save "$TMP/ck" --exit-interval 10
[ "$CODE" -eq 0 ] || fail "first half"
/usr/bin/python3 -c "import json,sys; l=json.load(open(sys.argv[1]))['lr_scheduler']; \
assert l == {'max_lr': 3e-3, 'min_lr': 3e-4, 'warmup_steps': 12.0, 'decay_steps': 80, 'decay_style': 'cosine', 'init_lr': 0.0}, l" \
  "$TMP/ck/iter_0000010/metadata.json" || fail "the schedule recorded in metadata.json"

# --use-checkpoint-lr-scheduler: the checkpoint's schedule.
run "$LOOM" train "${ARGS[@]}" "${NEW[@]}" --load "$TMP/ck" --use-checkpoint-lr-scheduler
[ "$CODE" -eq 0 ] || fail "--use-checkpoint-lr-scheduler"
for l in " > using checkpoint value 0.003 for learning rate" " > using checkpoint value 0.0003 for minimum learning rate" \
         " > using checkpoint value 12 for warmup iterations" " > using checkpoint value 80 for total number of iterations" \
         " > using checkpoint value cosine for learning rate decay style" "> learning rate decay style: cosine"; do
  expect_line "$l"
done
[ "$(lrs "$TMP/out" | wc -l)" -eq 10 ] || fail "ten iterations after the resume"
diff <(lrs "$TMP/old.log") <(lrs "$TMP/out") > "$TMP/diff" || { fail "lr after --use-checkpoint-lr-scheduler"; head -3 "$TMP/diff"; }
[ -z "$ERR" ] || fail "--use-checkpoint-lr-scheduler printed to stderr"

# --override-lr-scheduler (and Megatron-Core's spelling): the command line's.
for flag in --override-lr-scheduler --override-opt_param-scheduler; do
  run "$LOOM" train "${ARGS[@]}" "${NEW[@]}" --load "$TMP/ck" $flag
  [ "$CODE" -eq 0 ] || fail "$flag"
  for l in " > overriding learning rate value to 0.006" " > overriding minimum learning rate value to 0.0001" \
           " > overriding warmup iterations value to 8" " > overriding total number of iterations value to 64" \
           " > overriding learning rate decay style value to linear" "> learning rate decay style: linear"; do
    expect_line "$l"
  done
  diff <(lrs "$TMP/new.log") <(lrs "$TMP/out") > "$TMP/diff" || { fail "lr after $flag"; head -3 "$TMP/diff"; }
done

# Neither: Loom keeps the command line's and names the differences (Megatron's assert would stop).
run "$LOOM" train "${ARGS[@]}" "${NEW[@]}" --load "$TMP/ck"
[ "$CODE" -eq 0 ] || fail "resume with another schedule"
diff <(lrs "$TMP/new.log") <(lrs "$TMP/out") >/dev/null || fail "lr without either flag"
case "$ERR" in
  "loom: warning: the learning-rate schedule differs from the checkpoint's (learning rate: checkpoint 0.003, command line 0.006; minimum learning rate: checkpoint 0.0003, command line 0.0001; warmup iterations: checkpoint 12, command line 8; total number of iterations: checkpoint 80, command line 64; learning rate decay style: checkpoint cosine, command line linear): the command line's is used"*) ;;
  *) fail "the mismatch warning" ;;
esac
run "$LOOM" train "${ARGS[@]}" "${OLD[@]}" --load "$TMP/ck"
[ -z "$ERR" ] && ! grep -q "checkpoint value\|overriding" <<<"$OUT" || fail "the same schedule: no lines"

# A checkpoint saved before the schedule was recorded.
cp -r "$TMP/ck" "$TMP/old_ck"
/usr/bin/python3 -c "import json,sys; p=sys.argv[1]; m=json.load(open(p)); del m['lr_scheduler']; json.dump(m, open(p,'w'))" \
  "$TMP/old_ck/iter_0000010/metadata.json"
run "$LOOM" train "${ARGS[@]}" "${NEW[@]}" --load "$TMP/old_ck" --use-checkpoint-lr-scheduler
[ "$CODE" -eq 0 ] || fail "an old checkpoint"
[ "$ERR" = "loom: warning: --use-checkpoint-lr-scheduler: $TMP/old_ck records no learning-rate schedule (saved by an older Loom): the command line's is used" ] \
  || fail "old checkpoint warning"
diff <(lrs "$TMP/new.log") <(lrs "$TMP/out") >/dev/null || fail "lr from an old checkpoint"

expect_error "--override-lr-scheduler and --use-checkpoint-lr-scheduler: give only one" \
  "$LOOM" train "${ARGS[@]}" "${NEW[@]}" --load "$TMP/ck" --override-lr-scheduler --use-checkpoint-lr-scheduler
finish
