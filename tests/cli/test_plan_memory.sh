# `loom plan` prints Megatron's theoretical memory report; with reference log 004's flags it must print
# log 004's lines exactly (lines 799-804), and its per-(tensor, pipeline) rank parameter counts.
set -e
source "$(dirname "$0")/lib.sh"

LOG004=(--num-layers 16 --hidden-size 2048 --num-attention-heads 32 --ffn-hidden-size 8192 --seq-length 2048
  --max-position-embeddings 2048 --micro-batch-size 2 --global-batch-size 16 --fp16 --recompute-activations
  --tensor-model-parallel-size 2 --pipeline-model-parallel-size 4 --num-layers-per-virtual-pipeline-stage 1)

run "$LOOM" plan "${LOG004[@]}"
[ "$CODE" -eq 0 ] || fail "plan with log 004's flags exited $CODE"
expect_line " > padded vocab (size: 50257) with 175 dummy tokens (new size: 50432)"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 156577792"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (1, 0): 156577792"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 1): 100741120"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (1, 2): 100741120"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 3): 152387584"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (1, 3): 152387584"
expect_line "Number of parameters in transformer block in billions:  0.81"
expect_line "Number of parameters in embedding layers in billions: 0.10"
expect_line "Total number of parameters in billions: 0.91"
expect_line "Number of parameters in most loaded shard in billions: 0.1523"
expect_line "Number of parameters in other shards in billions: 0.1007"
expect_line "Theoretical memory footprints: weight and optimizer=2614.79 MB"
# The six lines are consecutive and last, as Megatron prints them.
want=$(printf '%s\n' "Number of parameters in transformer block in billions:  0.81" \
  "Number of parameters in embedding layers in billions: 0.10" "Total number of parameters in billions: 0.91" \
  "Number of parameters in most loaded shard in billions: 0.1523" \
  "Number of parameters in other shards in billions: 0.1007" \
  "Theoretical memory footprints: weight and optimizer=2614.79 MB")
[ "$(tail -n 6 <<<"$OUT")" = "$want" ] || fail "the memory report is not the last six lines"

# With sequence parallelism Megatron adds the activation estimate (values from Megatron's own function).
run "$LOOM" plan "${LOG004[@]}" --sequence-parallel
[ "$CODE" -eq 0 ] || fail "plan with --sequence-parallel exited $CODE"
expect_line "Activation memory footprint per transformer layer: 136.0 MB"
expect_line "Memory penalty from interleaved schedule: 1.19"
expect_line "Number of in-flight microbatches: 5"
expect_line "Theoretical memory footprints: weight and optimizer=2614.79 MB, activation=2603.07 MB, total=5217.86 MB"

# Distributed optimizer over 4 data-parallel ranks: 6 + 12/4 = 9 bytes per parameter instead of 18.
run "$LOOM" plan "${LOG004[@]}" --use-distributed-optimizer --world-size 32 --global-batch-size 64
[ "$CODE" -eq 0 ] || fail "plan with the distributed optimizer exited $CODE"
expect_line "Theoretical memory footprints: weight and optimizer=1307.40 MB"

# Reference log 002's model on one process: TP 1, PP 1.
run "$LOOM" plan --num-layers 48 --hidden-size 1600 --num-attention-heads 25 --seq-length 1024 --fp16 \
  --micro-batch-size 8 --global-batch-size 64 --recompute-granularity full
[ "$CODE" -eq 0 ] || fail "plan of log 002's model exited $CODE"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 1557686400"
expect_line "Number of parameters in most loaded shard in billions: 1.5554"
expect_line "Theoretical memory footprints: weight and optimizer=26699.47 MB"

expect_error "give only one of --fp16 and --bf16" "$LOOM" plan "${LOG004[@]}" --bf16
expect_error "--pipeline-model-parallel-size (3)" \
  "$LOOM" plan --num-layers 16 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --pipeline-model-parallel-size 3
finish
