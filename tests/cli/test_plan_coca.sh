# `loom plan --model coca`: CoCa-B/16's counts as reference log 000 prints them, without allocating the model.
set -e
source "$(dirname "$0")/lib.sh"

run bash -c "ulimit -v 400000; exec \"$LOOM\" plan --model-preset coca-b16"
[ "$CODE" -eq 0 ] || fail "plan --model-preset coca-b16 exited $CODE: $ERR"
expect_line "number of total params: 253026049"
expect_line "number of params with requires_grad: 253026049"
expect_line "number of visual params: 88630528"
expect_line "number of text params: 63428096"
expect_line "number of model state_dict keys: 770"

run "$LOOM" plan --model coca --vision-layers 2 --vision-width 64 --vision-heads 4 --image-size 32 --patch-size 8 \
  --text-width 32 --text-heads 4 --text-layers 2 --decoder-layers 2 --embed-dim 32 --pooler-heads 4 --pooler-queries 4 \
  --text-vocab-size 100 --text-context-length 16 --precision fp16 --enable-deepspeed --zero-stage 1 --world-size 2
[ "$CODE" -eq 0 ] || fail "small coca plan exited $CODE: $ERR"
expect_line "number of total params: 1695649"

expect_error "--image-size 225 is not divisible by --patch-size 16" "$LOOM" plan --model coca --image-size 225
expect_error "--vision-width 768 is not divisible by --vision-heads 7" "$LOOM" plan --model coca --vision-heads 7
expect_error "unknown --model-preset 'coca-l14' for --model coca (one of: coca-b16)" \
  "$LOOM" plan --model coca --model-preset coca-l14
expect_error "--zero-stage 3 is not 0, 1 or 2" "$LOOM" plan --model coca --zero-stage 3
finish
