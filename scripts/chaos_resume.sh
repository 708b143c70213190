#!/bin/bash
# Chaos test of resume: trains ITERS iterations under mpirun as DP2 x PP2 (4 ranks) with ZeRO-1
# (--use-distributed-optimizer) and an --async-save every SAVE_INTERVAL iterations, SIGKILLs a random rank
# at a random moment KILLS times (restarting from the latest committed checkpoint each time), and checks
# the result against one uninterrupted run: every logged iteration line (loss, grad norm, learning rate,
# loss scale, consumed samples, as printed: 7 significant digits of the loss) of every segment, killed or
# not, equals the uninterrupted run's, and the final checkpoint's shards (weights and optimizer state) are
# byte for byte the same. Also checks that no iter_N.tmp is left at the end.
#
#   scripts/chaos_resume.sh [--kills K] [--iters N] [--save-interval S] [--seed R] [--work DIR]
#   env: LOOM (default build/loom), MPIRUN (default mpirun)
# Defaults: 30 kills, 150 iterations, a save every 3. The CI test (tests/parallel/test_chaos_resume.sh) runs 5.
# A kill moment is random in iteration space (after 1 to 3*S iterations of the segment, where an async
# save commits only at the next save, so a committed checkpoint needs 2*S) plus up to 0.4 s: kills land
# in the step, in the save's snapshot, during the background write and in the commit.
set -u
KILLS=30 ITERS=150 SAVE_INTERVAL=3 SEED=$$ WORK=
while [ $# -gt 0 ]; do
  case $1 in
    --kills) KILLS=$2; shift 2 ;;
    --iters) ITERS=$2; shift 2 ;;
    --save-interval) SAVE_INTERVAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "chaos_resume: unknown option $1" >&2; exit 2 ;;
  esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
LOOM=${LOOM:-$SRC/build/loom}
MPIRUN=${MPIRUN:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 LOOM_COMM_TIMEOUT=60
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
RANDOM=$SEED
T0=$(date +%s.%N)

head -n 40 "$SRC/data/corpus/kjv.jsonl" > "$WORK/small.jsonl"
"$LOOM" preprocess --input "$WORK/small.jsonl" --output-prefix "$WORK/small" --vocab-file "$SRC/data/gpt2/vocab.json" \
  --merge-file "$SRC/data/gpt2/merges.txt" --append-eod --workers 1 >/dev/null || { echo "chaos_resume: preprocess failed"; exit 1; }
ARGS=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 8
      --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine --lr-warmup-iters 3 --train-iters "$ITERS" --log-interval 1
      --eval-iters 0 --split 100,0,0 --seed 11 --pipeline-model-parallel-size 2 --use-distributed-optimizer
      --async-save --save-interval "$SAVE_INTERVAL"
      --data-path "$WORK/small_text_document" --vocab-file "$SRC/data/gpt2/vocab.json" --merge-file "$SRC/data/gpt2/merges.txt")
MPI=("$MPIRUN" --allow-run-as-root --oversubscribe -np 4 "$LOOM" train "${ARGS[@]}")
# The deterministic fields of an iteration line (timings dropped).
steps() { grep -oE 'iteration +[0-9]+/.*number of nan iterations: +[0-9]+' "$@" |
          sed -E 's/elapsed time per iteration \(ms\): [0-9.]+ \| //; s/throughput per GPU \(TFLOP\/s\/GPU\): [0-9.]+ \| //; s/tokens per second per GPU: [0-9.]+ \| //'; }
iter_of() { grep -oE '^iteration +[0-9]+' | grep -oE '[0-9]+'; }

echo "chaos_resume: $KILLS kills, $ITERS iterations, a save every $SAVE_INTERVAL, seed $SEED, in $WORK"
"${MPI[@]}" --save "$WORK/ref" > "$WORK/ref.log" 2>&1 || { echo "chaos_resume: the uninterrupted run failed"; tail -5 "$WORK/ref.log"; exit 1; }
steps "$WORK/ref.log" > "$WORK/ref.steps"
[ "$(wc -l < "$WORK/ref.steps")" -eq "$ITERS" ] || { echo "chaos_resume: the uninterrupted run logged $(wc -l < "$WORK/ref.steps") iterations"; exit 1; }

kills=0 segments=0 during_save=0 recomputed=0
rm -rf "$WORK/ck"
: > "$WORK/chaos.steps"
while :; do
  segments=$((segments + 1))
  log=$WORK/seg$segments.log
  start=0
  load=()
  if [ -f "$WORK/ck/latest_checkpointed_iteration.txt" ]; then
    start=$(cat "$WORK/ck/latest_checkpointed_iteration.txt")
    load=(--load "$WORK/ck")
  fi
  "${MPI[@]}" --save "$WORK/ck" "${load[@]}" > "$log" 2>&1 &
  job=$!
  if [ "$kills" -lt "$KILLS" ] && [ $((start + 2)) -lt "$ITERS" ]; then
    target=$((start + 1 + RANDOM % (3 * SAVE_INTERVAL)))
    [ "$target" -lt "$ITERS" ] || target=$((ITERS - 1))
    for _ in $(seq 2400); do  # up to 120 s
      grep -qE "iteration +$target/" "$log" 2>/dev/null && break
      kill -0 $job 2>/dev/null || break
      sleep 0.05
    done
    sleep "0.$(printf '%03d' $((RANDOM % 400)))"
    ranks=($(pgrep -P $job))
    if [ "${#ranks[@]}" -ne 4 ]; then
      echo "chaos_resume: segment $segments: expected 4 rank processes under mpirun, found ${#ranks[@]}"; tail -5 "$log"; exit 1
    fi
    victim=${ranks[$((RANDOM % 4))]}
    rank=$(tr '\0' '\n' < "/proc/$victim/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
    saving=
    ls -d "$WORK"/ck/iter_*.tmp >/dev/null 2>&1 && { during_save=$((during_save + 1)); saving=" (a save in progress)"; }
    kill -9 "$victim"
    kills=$((kills + 1))
    wait $job 2>/dev/null
    reached=$(steps "$log" | tail -1 | iter_of)
    echo "  segment $segments: from iteration $start, SIGKILL to rank ${rank:-?} after iteration ${reached:-none}$saving"
  else
    if ! wait $job; then echo "chaos_resume: the last segment failed"; tail -5 "$log"; exit 1; fi
    echo "  segment $segments: from iteration $start to the end"
  fi
  [ -n "$(steps "$log")" ] && recomputed=$((recomputed + $(steps "$log" | wc -l)))
  steps "$log" >> "$WORK/chaos.steps"
  if grep -qE "iteration +$ITERS/" "$log"; then break; fi
  [ "$segments" -lt $((KILLS * 10 + 10)) ] || { echo "chaos_resume: no progress after $segments segments"; exit 1; }
done

bad=0
# Every iteration line of every segment equals the uninterrupted run's line for that iteration.
while IFS= read -r line; do
  it=$(echo "$line" | iter_of)
  ref=$(sed -n "${it}p" "$WORK/ref.steps")
  if [ "$line" != "$ref" ]; then echo "DIFFERS at iteration $it:"; echo "  chaos: $line"; echo "  ref:   $ref"; bad=1; break; fi
done < "$WORK/chaos.steps"
for it in $(seq "$ITERS"); do
  grep -qE "^iteration +$it/" "$WORK/chaos.steps" || { echo "iteration $it was never logged"; bad=1; break; }
done
final=$(printf 'iter_%07d' "$ITERS")
for shard in shard_tp00_pp000 shard_tp00_pp001; do
  cmp -s "$WORK/ref/$final/$shard.safetensors" "$WORK/ck/$final/$shard.safetensors" || { echo "final $shard differs"; bad=1; }
done
if ls -d "$WORK"/ck/*.tmp* >/dev/null 2>&1; then echo "temporary files left: $(ls "$WORK/ck")"; bad=1; fi
took=$(echo "$(date +%s.%N) - $T0" | bc)
printf 'chaos_resume: %d kills (%d while a save was being written), %d segments, %d iteration lines for %d iterations, %.1f s\n' \
  "$kills" "$during_save" "$segments" "$recomputed" "$ITERS" "$took"
if [ "$bad" -ne 0 ] || [ "$kills" -lt "$KILLS" ]; then echo "chaos_resume: FAILED"; exit 1; fi
echo "chaos_resume: equal to the uninterrupted run (every logged iteration line; final weights and optimizer state byte for byte)"
