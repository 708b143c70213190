# `loom plan` prints the parameter counts of the reference logs without allocating the model.
set -e
source "$(dirname "$0")/lib.sh"

run "$LOOM" plan --num-layers 4 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --max-position-embeddings 1024
[ "$CODE" -eq 0 ] || fail "plan exited $CODE"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 102946816"
expect_line " > padded vocab (size: 50257) with 47 dummy tokens (new size: 50304)"

# GPT-2 1.5B of reference log 002; the model would need 25 GB: plan must not allocate it.
run bash -c "ulimit -v 2000000; exec \"$LOOM\" plan --num-layers 48 --hidden-size 1600 --num-attention-heads 25 --seq-length 1024"
[ "$CODE" -eq 0 ] || fail "plan of the 1.5B model exited $CODE"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 1557686400"

# Reference log 004: its middle pipeline stages hold 4 layers and print 100741120 = 4 x 25185280 per TP rank.
run "$LOOM" plan --num-layers 16 --hidden-size 2048 --num-attention-heads 32 --ffn-hidden-size 8192 --seq-length 2048 \
  --tensor-model-parallel-size 2
[ "$CODE" -eq 0 ] || fail "plan with TP 2 exited $CODE"
expect_line " > parameters per transformer layer per tensor-parallel rank: 25185280"
expect_line " > padded vocab (size: 50257) with 175 dummy tokens (new size: 50432)"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (1, 0): 458805248"
expect_error "world size (6) is not divisible by tensor x pipeline x context parallel size (4)" \
  "$LOOM" plan --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --tensor-model-parallel-size 4 --world-size 6
expect_error "--num-attention-heads (6) must be divisible by --tensor-model-parallel-size (4)" \
  "$LOOM" plan --num-layers 2 --hidden-size 96 --num-attention-heads 6 --seq-length 64 --tensor-model-parallel-size 4

expect_error "--hidden-size (1000) must be divisible by --num-attention-heads (16)" \
  "$LOOM" plan --num-layers 2 --hidden-size 1000 --num-attention-heads 16 --seq-length 64
finish
