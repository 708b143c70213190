# The command lines of reference logs 001 (DeepSpeed's Megatron v1 GPT-2 with ZeRO-2 offload, 4 ranks) and 004
# (Megatron-Core TP2 x PP4 x VPP4, 8 ranks) run under mpirun unchanged apart from paths and the sizes this
# machine cannot hold, and their argument blocks show the seeds' values for every other name both have
# (tests/cli/compare_arguments.py; 001's block is Megatron v1's, whose names batch_size, model_parallel_size,
# warmup and min_scale are Loom's micro_batch_size, tensor_model_parallel_size, lr_warmup_fraction and
# min_loss_scale).
source "$(dirname "$0")/loom_mpi_lib.sh"
SEED=$SRC/tests/data/megatron_seeds
COMPARE="/usr/bin/python3 $SRC/tests/cli/compare_arguments.py"

# 001: the DeepSpeed JSON as the log prints it (TensorBoard's path replaced). Shrunk: the width (1024), the
# sequence (1024), the iterations (1,000,000: --lr-decay-iters keeps the schedule of the 1M-iteration run)
# and the evaluation (v1's 100 iterations). Added: the GPT-2 vocabulary files, which v1 fetched itself.
sed "s|/home/cc/bert|$TMP/bert|" "$SEED/001.ds_config.json" > "$TMP/ds_zero-offload_config.json"
$MPIRUN --oversubscribe -np 4 "$LOOM" train --model-parallel-size 1 --num-layers 4 --hidden-size 64 \
  --num-attention-heads 16 --batch-size 24 --seq-length 32 --max-position-embeddings 32 --train-iters 5 \
  --lr-decay-iters 1000000 --eval-iters 1 --resume-dataloader --train-data "$TMP/small_text_document" --lazy-loader \
  --tokenizer-type GPT2BPETokenizer --vocab-file "$VOCAB" --merge-file "$MERGES" --split 949,50,1 \
  --distributed-backend nccl --lr 0.00015 --no-load-optim --lr-decay-style cosine --weight-decay 1e-2 --clip-grad 1.0 \
  --warmup .01 --checkpoint-activations --deepspeed-activation-checkpointing --fp16 --log-interval 5 --cpu-optimizer \
  --deepspeed --deepspeed_config "$TMP/ds_zero-offload_config.json" > "$TMP/001.log" 2> "$TMP/001.err" ||
  fail "log 001's command line: $(tail -3 "$TMP/001.err")"
[ -s "$TMP/001.err" ] && fail "log 001's command line wrote to stderr: $(head -3 "$TMP/001.err")"
grep -qxF "> flags with no effect on the CPU backend: --cpu-optimizer, --deepspeed-activation-checkpointing, --distributed-backend, --lazy-loader" \
  "$TMP/001.log" || fail "001: the no-effect line"
# The schedule of log 001's first iteration line (learning rate 7.500E-08 at iteration 5), and DeepSpeed's
# static loss scale of 4096 from the JSON.
grep -q "iteration        5/       5 |.*learning rate: 7.500000E-08 |.*loss scale: 4096.0 |" "$TMP/001.log" ||
  fail "001: iteration 5 with log 001's learning rate and loss scale"
grep -qE "^  global_batch_size \.+ 96$" "$TMP/001.log" || fail "001: the global batch is 24 x 4 ranks"
# Not compared: shrunk sizes, replaced paths; lr_decay_iters (given for the shrunk run); loss_scale: v1 prints
# its own None, DeepSpeed's static 4096 is what runs (and what Loom shows); save_interval: v1's default without
# --save; vocab_size: v1's BERT default, unused for GPT-2; exit_interval: Loom shows "off" as 0.
$COMPARE "$TMP/001.log" "$SEED/001.arguments" --rename batch_size=micro_batch_size \
  model_parallel_size=tensor_model_parallel_size warmup=lr_warmup_fraction min_scale=min_loss_scale --skip \
  hidden_size seq_length max_position_embeddings train_iters eval_iters train_data deepspeed_config lr_decay_iters \
  loss_scale save_interval vocab_size exit_interval || fail "log 001's argument block"

# 004: Megatron-Core's flags of the run (the MegatronDPP fork's train_gpt3 script with the logged values).
# Shrunk: the width (2048, 32 heads), the sequence (2048), 20 iterations and 10 eval iterations. Left out
# until its branch merges: MegatronDPP's --use-dpp --workload --node-ips --num-gpus (the pipeline branch);
# megatron_compat_table.cpp lists them.
$MPIRUN --oversubscribe -np 8 "$LOOM" train --num-layers 16 --hidden-size 64 --num-attention-heads 4 \
  --seq-length 64 --max-position-embeddings 64 --micro-batch-size 2 --global-batch-size 16 \
  --tensor-model-parallel-size 2 --pipeline-model-parallel-size 4 --num-layers-per-virtual-pipeline-stage 1 \
  --train-iters 1 --eval-iters 1 --lr 6.0e-5 --min-lr 6.0e-6 --lr-decay-style cosine --lr-decay-iters 430000 \
  --lr-warmup-fraction .001 --weight-decay 0.1 --adam-beta2 0.95 --init-method-std 0.006 --clip-grad 1.0 --fp16 \
  --recompute-activations --split 949,50,1 --log-interval 1 --save-interval 50 --eval-interval 20 \
  --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES" --tokenizer-type GPT2BPETokenizer \
  --save "$TMP/ngc_models" --tensorboard-dir "$TMP/tensorboard" --transformer-impl transformer_engine --distributed-backend nccl \
  > "$TMP/004.log" 2> "$TMP/004.err" || fail "log 004's command line: $(tail -3 "$TMP/004.err")"
grep -qxF "> flags with no effect on the CPU backend: --distributed-backend, --transformer-impl" "$TMP/004.log" ||
  fail "004: the no-effect line"
grep -qxF "setting number of micro-batches to constant 8" "$TMP/004.log" || fail "004: 8 micro-batches"
# Not compared: shrunk sizes, replaced paths (load: no checkpoint to resume here); ddp_bucket_size and
# decoder_first/last_pipeline_num_layers: Loom shows the bucket size it derives and "even" as 0;
# apply_rope_fusion: Megatron turns it off for learned positions (a fusion: no effect here); exit_interval and
# exit_duration_in_mins: Loom shows "off" as 0; tensorboard_dir: a replaced path; the MegatronDPP flags left out above.
$COMPARE "$TMP/004.log" "$SEED/004.arguments" --skip hidden_size num_attention_heads seq_length encoder_seq_length \
  max_position_embeddings ffn_hidden_size moe_ffn_hidden_size kv_channels train_iters eval_iters data_path vocab_file \
  merge_file save load ddp_bucket_size decoder_first_pipeline_num_layers decoder_last_pipeline_num_layers \
  apply_rope_fusion exit_interval exit_duration_in_mins tensorboard_dir use_dpp workload node_ips num_gpus ||
  fail "log 004's argument block"
exit $status
