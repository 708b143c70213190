# Reference log 002's command line (Megatron-LM's 2021 examples/pretrain_gpt.sh with the run's values, rebuilt
# from its argument block) runs unchanged apart from the paths and the sizes this machine cannot hold (GPT-2
# 1.5B: 48 layers of 1600, sequences of 1024, 1000 iterations, 10 eval iterations), and its argument block
# shows the seed's values for every other name both blocks have (tests/cli/compare_arguments.py).
set -e
source "$(dirname "$0")/lib.sh"
corpus c 30
SEED=$SRC/tests/data/megatron_seeds
SHRUNK=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --max-position-embeddings 64
        --train-iters 2 --eval-iters 1)
run "$LOOM" train "${SHRUNK[@]}" --micro-batch-size 8 --global-batch-size 64 --lr-decay-iters 320 \
  --data-path "$TMP/c_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES" --data-impl mmap \
  --split 800,100,100 --distributed-backend nccl --lr 0.00015 --min-lr 1.0e-5 --lr-decay-style cosine \
  --weight-decay 1e-2 --clip-grad 1.0 --lr-warmup-fraction .01 --checkpoint-activations --log-interval 1 \
  --save-interval 10000 --eval-interval 1000 --fp16
[ "$CODE" -eq 0 ] || fail "log 002's command line"
expect_line "> flags with no effect on the CPU backend: --data-impl, --distributed-backend"
expect_line "setting number of micro-batches to constant 8"
expect_line "  recompute_granularity ........................... full"
# Not compared: the shrunk sizes and the replaced paths; kv_channels and ffn_hidden_size follow the shrunk
# width; apply_query_key_layer_scaling: Megatron 2021's default (True) is Megatron-Core's False, the same
# attention with Loom's fp32 scores (megatron_compat_table.cpp); exit_interval and exit_duration_in_mins:
# Loom shows "off" as 0; local_rank: set by Megatron's launcher (Loom takes ranks from MPI).
echo "$OUT" > "$TMP/log"
/usr/bin/python3 "$SRC/tests/cli/compare_arguments.py" "$TMP/log" "$SEED/002.arguments" --skip num_layers hidden_size \
  num_attention_heads seq_length encoder_seq_length max_position_embeddings train_iters eval_iters kv_channels \
  ffn_hidden_size data_path vocab_file merge_file apply_query_key_layer_scaling exit_interval exit_duration_in_mins \
  local_rank || fail "log 002's argument block"
finish
