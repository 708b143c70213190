# The dynamic pipeline schedule (--pipeline-schedule dynamic) under mpirun gives BITWISE the losses, grad
# norms and final weights of the fixed schedule of the same shape (1F1B, or interleaved with 2 virtual
# stages), dropout on, for GPT and Llama: PP 2 and 4, with TP 2, and with a straggler injected
# (LOOM_PIPELINE_DELAY, a slow device or a slow link), which changes the order the stages run in but not what
# they compute. Memory:
# each stage's measured peak of micro-batches in flight stays within its cap (default: 1F1B's), also
# with an explicit smaller cap, and no chunk outgrows its activation slots.
source "$(dirname "$0")/layout_lib.sh"
LAYOUT_EXTRA=(--layers 8 --dropout 0.1 --iters 3 --global-batch 16)
same() {  # reference other...: bitwise equal outputs
  local ref=$1
  shift
  for o in "$@"; do cmp -s "$TMP/$ref.st" "$TMP/$o.st" || { echo "FAIL: $o differs from $ref"; status=1; }; done
}
field() { grep -oE " $2=[0-9,]+" "$TMP/$1.log" | cut -d= -f2; }
within_cap() {  # name: every stage's peak <= its cap, no chunk over its slots
  local peaks caps
  peaks=$(field "$1" in_flight) caps=$(field "$1" cap)
  paste -d' ' <(tr , '\n' <<<"$peaks") <(tr , '\n' <<<"$caps") | awk -v n="$1" '$1 > $2 { print "FAIL: " n ": peak " $1 " > cap " $2; bad = 1 } END { exit bad }' \
    || status=1
  [ "$(field "$1" outgrown_chunks)" = 0 ] || { echo "FAIL: $1: a chunk held more activations than its slots"; status=1; }
}
SLOW_1="stage=1,prob=0.3,ms=3"
SLOW_0="stage=0,prob=0.5,ms=2,seed=3"
for arch in gpt llama; do
  A=(--arch $arch)
  run ${arch}_pp2_1f1b 2 "${A[@]}" --pp 2
  run ${arch}_pp2_dyn 2 "${A[@]}" --pp 2 --schedule dynamic
  LOOM_PIPELINE_DELAY=$SLOW_1 run ${arch}_pp2_dyn_slow 2 "${A[@]}" --pp 2 --schedule dynamic
  run ${arch}_pp2_dyn_cap1 2 "${A[@]}" --pp 2 --schedule dynamic --max-in-flight 1
  same ${arch}_pp2_1f1b ${arch}_pp2_dyn ${arch}_pp2_dyn_slow ${arch}_pp2_dyn_cap1
  run ${arch}_pp2_vpp2_int 2 "${A[@]}" --pp 2 --vpp 2 --schedule interleaved
  LOOM_PIPELINE_DELAY=$SLOW_0 run ${arch}_pp2_vpp2_dyn_slow 2 "${A[@]}" --pp 2 --vpp 2 --schedule dynamic
  same ${arch}_pp2_vpp2_int ${arch}_pp2_vpp2_dyn_slow
  run ${arch}_tp2_pp2_1f1b 4 "${A[@]}" --pp 2 --tp 2
  LOOM_PIPELINE_DELAY=$SLOW_1 run ${arch}_tp2_pp2_dyn_slow 4 "${A[@]}" --pp 2 --tp 2 --schedule dynamic
  same ${arch}_tp2_pp2_1f1b ${arch}_tp2_pp2_dyn_slow
done
run gpt_pp4_1f1b 4 --pp 4
LOOM_PIPELINE_DELAY=$SLOW_1 run gpt_pp4_dyn_slow 4 --pp 4 --schedule dynamic
run gpt_pp4_dyn_cap2 4 --pp 4 --schedule dynamic --max-in-flight 2
same gpt_pp4_1f1b gpt_pp4_dyn_slow gpt_pp4_dyn_cap2
run gpt_pp4_vpp2_int 4 --pp 4 --vpp 2 --schedule interleaved
run gpt_pp4_vpp2_dyn 4 --pp 4 --vpp 2 --schedule dynamic
same gpt_pp4_vpp2_int gpt_pp4_vpp2_dyn
# A slow link into stage 1 (link=1: its messages arrive late, its device is not slowed): the dynamic
# schedule runs what has arrived meanwhile, the fixed one waits; both compute the same.
SLOW_LINK="stage=1,prob=0.4,ms=3,link=1"
LOOM_PIPELINE_DELAY=$SLOW_LINK run gpt_pp2_vpp2_dyn_link 2 --pp 2 --vpp 2 --schedule dynamic
LOOM_PIPELINE_DELAY=$SLOW_LINK run gpt_pp2_vpp2_int_link 2 --pp 2 --vpp 2 --schedule interleaved
same gpt_pp2_vpp2_int gpt_pp2_vpp2_dyn_link gpt_pp2_vpp2_int_link
run gpt_tp2_pp2_vpp2_int 4 --pp 2 --tp 2 --vpp 2 --schedule interleaved
LOOM_PIPELINE_DELAY=$SLOW_0 run gpt_tp2_pp2_vpp2_dyn_slow 4 --pp 2 --tp 2 --vpp 2 --schedule dynamic
same gpt_tp2_pp2_vpp2_int gpt_tp2_pp2_vpp2_dyn_slow

# Memory: within the caps everywhere; the default cap is 1F1B's own peak (P - stage), and an explicit
# cap is what the stages held.
for n in "$TMP"/*dyn*.log; do within_cap "$(basename "$n" .log)"; done
[ "$(field gpt_pp4_1f1b in_flight)" = "4,3,2,1" ] || { echo "FAIL: 1F1B peaks $(field gpt_pp4_1f1b in_flight), expected 4,3,2,1"; status=1; }
[ "$(field gpt_pp4_dyn_slow cap)" = "4,3,2,1" ] || { echo "FAIL: default caps $(field gpt_pp4_dyn_slow cap)"; status=1; }
[ "$(field gpt_pp4_dyn_cap2 cap)" = "2,2,2,2" ] || { echo "FAIL: --max-in-flight 2 caps $(field gpt_pp4_dyn_cap2 cap)"; status=1; }
[ "$(field gpt_pp2_dyn_cap1 in_flight)" = "1,1" ] || { echo "FAIL: --max-in-flight 1 peaks $(field gpt_pp2_dyn_cap1 in_flight)"; status=1; }
# Without a straggler the dynamic schedule holds no more than the fixed one: the same slots, no more
# allocator peak (world rank 0, the first stage, which holds the most).
for pair in "gpt_pp2_1f1b gpt_pp2_dyn" "gpt_pp4_vpp2_int gpt_pp4_vpp2_dyn"; do
  set -- $pair
  [ "$(field "$1" slots)" = "$(field "$2" slots)" ] || { echo "FAIL: $2 has other slots than $1"; status=1; }
  a=$(grep -oE 'peak_allocated_mb=[0-9.]+' "$TMP/$1.log" | cut -d= -f2)
  b=$(grep -oE 'peak_allocated_mb=[0-9.]+' "$TMP/$2.log" | cut -d= -f2)
  awk -v a="$a" -v b="$b" 'BEGIN { exit !(b <= a) }' || { echo "FAIL: $2 peaks at $b MB, $1 at $a MB"; status=1; }
done
# The caps below 1F1B's force another order on the first stage every iteration (so the bitwise checks
# above compared different orders); the injected stragglers usually reorder some too. (reordered= sums
# the ranks' counts of reordered iterations.)
for n in gpt_pp2_dyn_cap1 llama_pp2_dyn_cap1 gpt_pp4_dyn_cap2; do
  [ "$(field $n reordered)" -ge 3 ] || { echo "FAIL: $n reordered $(field $n reordered), expected every iteration"; status=1; }
done
echo "iterations reordered by the injected delays: $(for n in "$TMP"/*slow.log "$TMP"/*dyn_link.log; do grep -oE 'reordered=[0-9]+' "$n"; done | tr '\n' ' ')"
[ $status -eq 0 ] && echo "all dynamic pipeline checks passed"
exit $status
