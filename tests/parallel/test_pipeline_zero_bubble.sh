# The zero-bubble pipeline schedule (--pipeline-schedule zero-bubble, ZB-H1: each backward split into B and
# a deferred W) under mpirun gives BITWISE the losses, grad norms and final weights of 1F1B, dropout on,
# for GPT and Llama: PP 2 and 4, with TP 2, in bf16, and with a straggler injected (LOOM_PIPELINE_DELAY). Memory:
# every stage holds P micro-batches from forward to W (1F1B's first stage's count), within its slots.
source "$(dirname "$0")/layout_lib.sh"
LAYOUT_EXTRA=(--layers 8 --dropout 0.1 --iters 3 --global-batch 16)
same() {  # reference other...: bitwise equal outputs
  local ref=$1
  shift
  for o in "$@"; do cmp -s "$TMP/$ref.st" "$TMP/$o.st" || { echo "FAIL: $o differs from $ref"; status=1; }; done
}
field() { grep -oE " $2=[0-9,]+" "$TMP/$1.log" | cut -d= -f2; }
SLOW_1="stage=1,prob=0.3,ms=3"
SLOW_0="stage=0,prob=0.5,ms=2,seed=3"
for arch in gpt llama; do
  A=(--arch $arch)
  run ${arch}_pp2_1f1b 2 "${A[@]}" --pp 2
  run ${arch}_pp2_zb 2 "${A[@]}" --pp 2 --schedule zero-bubble
  LOOM_PIPELINE_DELAY=$SLOW_1 run ${arch}_pp2_zb_slow 2 "${A[@]}" --pp 2 --schedule zero-bubble
  same ${arch}_pp2_1f1b ${arch}_pp2_zb ${arch}_pp2_zb_slow
  run ${arch}_tp2_pp2_1f1b 4 "${A[@]}" --pp 2 --tp 2
  LOOM_PIPELINE_DELAY=$SLOW_0 run ${arch}_tp2_pp2_zb_slow 4 "${A[@]}" --pp 2 --tp 2 --schedule zero-bubble
  same ${arch}_tp2_pp2_1f1b ${arch}_tp2_pp2_zb_slow
done
run gpt_pp4_1f1b 4 --pp 4
run gpt_pp4_zb 4 --pp 4 --schedule zero-bubble
LOOM_PIPELINE_DELAY=$SLOW_1 run gpt_pp4_zb_slow 4 --pp 4 --schedule zero-bubble
same gpt_pp4_1f1b gpt_pp4_zb gpt_pp4_zb_slow
# Sequence parallelism too (the linears' output gradients gathered into what W keeps).
run gpt_tp2_sp_pp2_1f1b 4 --pp 2 --tp 2 --sp 1
run gpt_tp2_sp_pp2_zb 4 --pp 2 --tp 2 --sp 1 --schedule zero-bubble
same gpt_tp2_sp_pp2_1f1b gpt_tp2_sp_pp2_zb
# Half precision (bf16 weights, activations and GEMMs; W reads the output gradients its B kept in the
# activation stash, and the output layer's bf16 logit gradients).
for arch in gpt llama; do
  run ${arch}_bf16_pp2_1f1b 2 --arch $arch --pp 2 --precision bf16
  LOOM_PIPELINE_DELAY=$SLOW_1 run ${arch}_bf16_pp2_zb 2 --arch $arch --pp 2 --precision bf16 --schedule zero-bubble
  same ${arch}_bf16_pp2_1f1b ${arch}_bf16_pp2_zb
done
run gpt_bf16_tp2_sp_pp2_1f1b 4 --pp 2 --tp 2 --sp 1 --precision bf16
run gpt_bf16_tp2_sp_pp2_zb 4 --pp 2 --tp 2 --sp 1 --precision bf16 --schedule zero-bubble
same gpt_bf16_tp2_sp_pp2_1f1b gpt_bf16_tp2_sp_pp2_zb

# Memory: a micro-batch is in flight from its forward to its W, P of them on every stage, never more
# than its chunk's slots.
[ "$(field gpt_pp4_zb in_flight)" = "4,4,4,4" ] || { echo "FAIL: zero-bubble peaks $(field gpt_pp4_zb in_flight), expected 4,4,4,4"; status=1; }
[ "$(field gpt_pp4_1f1b in_flight)" = "4,3,2,1" ] || { echo "FAIL: 1F1B peaks $(field gpt_pp4_1f1b in_flight)"; status=1; }
for n in "$TMP"/*zb*.log; do
  [ "$(field "$(basename "$n" .log)" outgrown_chunks)" = 0 ] || { echo "FAIL: $n: a chunk outgrew its slots"; status=1; }
done
[ $status -eq 0 ] && echo "all zero-bubble pipeline checks passed"
exit $status
