# Llama through Megatron's flags (`--model llama` = RMSNorm, SwiGLU, RoPE, no linear biases) end to end:
# the argument block, the parameter count, a falling loss, recompute not changing a digit, resume and
# generation; `loom plan` of the published shapes without allocating; bad input refused with one line.
set -e
source "$(dirname "$0")/lib.sh"
corpus small 60
DATA=$TMP/small_text_document
MODEL=(--model llama --num-layers 2 --hidden-size 64 --num-attention-heads 8 --group-query-attention
       --num-query-groups 2 --ffn-hidden-size 128 --seq-length 32 --max-position-embeddings 32
       --rotary-base 10000 --use-rope-scaling --rope-scaling-factor 4 --rope-scaling-original-max-position-embeddings 16
       --untie-embeddings-and-output-weights)
COMMON=(--micro-batch-size 4 --global-batch-size 8 --lr 3e-3 --min-lr 3e-4 --lr-decay-style cosine
        --lr-warmup-iters 5 --hidden-dropout 0.1 --attention-dropout 0.1 --data-path "$DATA"
        --vocab-file "$VOCAB" --merge-file "$MERGES" --split 90,5,5)

run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 60 --log-interval 20 --eval-interval 30 \
  --eval-iters 2 --save "$TMP/ckpt"
[ "$CODE" -eq 0 ] || fail "train exited $CODE"
[ -z "$ERR" ] || fail "train wrote to stderr"
expect_line "  model ........................................... llama"
expect_line "  normalization ................................... RMSNorm"
expect_line "  swiglu .......................................... True"
expect_line "  position_embedding_type ......................... rope"
expect_line "  disable_bias_linear ............................. True"
expect_line "  num_query_groups ................................ 2"
# 2 x (norms 128 + QKV (64 + 2 x 2 x 8) x 64 + proj 64 x 64 + gate/up 2 x 128 x 64 + fc2 128 x 64)
# + word embedding 50304 x 64 + final norm 64 + untied output layer 50304 x 64.
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 6508864"
first=$(grep -oE 'iteration       20/.*lm loss: [0-9.E+-]+' <<<"$OUT" | grep -oE '[0-9.]+E[-+][0-9]+$')
last=$(grep -oE 'iteration       60/.*lm loss: [0-9.E+-]+' <<<"$OUT" | grep -oE '[0-9.]+E[-+][0-9]+$')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.0) }' || fail "loss did not fall by 1 nat ($first -> $last)"
cp "$TMP/out" "$TMP/first_run"

# Recompute changes memory, not results.
for g in full selective; do
  run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 60 --log-interval 20 --eval-interval 30 --eval-iters 2 \
    --recompute-granularity $g
  diff <(grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' "$TMP/first_run") \
       <(grep -oE 'lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' <<<"$OUT") >/dev/null || fail "recompute $g changed the run"
done

# Resume: 30 + 30 iterations equal 60 straight.
run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 30 --lr-decay-iters 60 --log-interval 10 --eval-iters 0 \
  --save "$TMP/half"
run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 60 --log-interval 10 --eval-iters 0 --load "$TMP/half"
[ "$CODE" -eq 0 ] || fail "resume exited $CODE"
resumed=$(grep -oE 'iteration       60/.*lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' <<<"$OUT" | sed -E 's/.*(lm loss.*)/\1/')
run "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 60 --log-interval 10 --eval-iters 0
straight=$(grep -oE 'iteration       60/.*lm loss: [0-9.E+-]+ \|.*grad norm: [0-9.]+' <<<"$OUT" | sed -E 's/.*(lm loss.*)/\1/')
[ -n "$resumed" ] && [ "$resumed" = "$straight" ] || fail "resumed run differs ($resumed vs $straight)"

run "$LOOM" generate --load "$TMP/ckpt" --prompt "And the LORD" --max-new-tokens 8 --temperature 0
[ "$CODE" -eq 0 ] || fail "generate exited $CODE: $ERR"
case "$OUT" in "And the LORD"*) ;; *) fail "generate output starts with the prompt" ;; esac

# The published shapes, counted without allocating (Llama-3.2-1B: 1,235,814,400 as in reference log 003).
run "$LOOM" plan --model-preset llama3.2-1b
[ "$CODE" -eq 0 ] || fail "plan llama3.2-1b exited $CODE: $ERR"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 1235814400"
run "$LOOM" plan --model-preset llama3-8b
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 8030261248"
run "$LOOM" plan --model-preset gpt2-1.5b
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 1557686400"
# Explicit flags override the preset; TP splits the query groups.
run "$LOOM" plan --model-preset llama3.2-1b --num-layers 2 --tensor-model-parallel-size 2
expect_line " > parameters per transformer layer per tensor-parallel rank: 30412800"

# Real use: a tokenizer made from the corpus (SentencePiece BPE by Debian's spm_train), the corpus tokenised
# with it, a Llama trained on it and sampled with the tokenizer recorded in the checkpoint.
head -n 200 "$SRC/data/corpus/kjv.jsonl" | /usr/bin/python3 -c 'import json,sys
for line in sys.stdin: print(json.loads(line)["text"])' > "$TMP/sp.txt"
spm_train --input "$TMP/sp.txt" --model_prefix "$TMP/sp" --vocab_size 600 --model_type bpe --byte_fallback \
  --character_coverage 1.0 --minloglevel 2 >/dev/null 2>&1 || fail "spm_train"
head -n 200 "$SRC/data/corpus/kjv.jsonl" > "$TMP/sp.jsonl"
run "$LOOM" preprocess --input "$TMP/sp.jsonl" --output-prefix "$TMP/sp" --tokenizer-type SentencePieceTokenizer \
  --tokenizer-model "$TMP/sp.model" --append-eod --workers 2
[ "$CODE" -eq 0 ] || fail "preprocess with SentencePiece exited $CODE: $ERR"
SP=(--data-path "$TMP/sp_text_document" --tokenizer-type SentencePieceTokenizer --tokenizer-model "$TMP/sp.model")
run "$LOOM" train "${MODEL[@]}" --micro-batch-size 4 --global-batch-size 8 --lr 3e-3 --min-lr 3e-4 \
  --lr-decay-style cosine --lr-warmup-iters 5 --split 90,5,5 "${SP[@]}" --train-iters 60 --log-interval 20 \
  --eval-iters 0 --save "$TMP/sp_ckpt"
[ "$CODE" -eq 0 ] || fail "train with SentencePiece exited $CODE: $ERR"
expect_line " > padded vocab (size: 600) with 40 dummy tokens (new size: 640)"
first=$(grep -oE 'iteration       20/.*lm loss: [0-9.E+-]+' <<<"$OUT" | grep -oE '[0-9.]+E[-+][0-9]+$')
last=$(grep -oE 'iteration       60/.*lm loss: [0-9.E+-]+' <<<"$OUT" | grep -oE '[0-9.]+E[-+][0-9]+$')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "SentencePiece Llama loss did not fall ($first -> $last)"
run "$LOOM" generate --load "$TMP/sp_ckpt" --prompt "And the LORD" --max-new-tokens 8 --temperature 0
[ "$CODE" -eq 0 ] || fail "generate with the recorded SentencePiece tokenizer exited $CODE: $ERR"
case "$OUT" in "And the LORD"*) ;; *) fail "SentencePiece generate output starts with the prompt" ;; esac
expect_error "--vocab-size (128256) differs from the tokenizer's (600)" \
  "$LOOM" train "${MODEL[@]}" --micro-batch-size 4 "${SP[@]}" --train-iters 1 --vocab-size 128256
printf 'not a model' > "$TMP/bad.model"
expect_error "$TMP/bad.model" "$LOOM" train "${MODEL[@]}" --micro-batch-size 4 --data-path "$TMP/sp_text_document" \
  --tokenizer-type SentencePieceTokenizer --tokenizer-model "$TMP/bad.model" --train-iters 1
expect_error "--tokenizer-type HuggingFaceTokenizer needs --tokenizer-model FILE" \
  "$LOOM" train "${MODEL[@]}" --micro-batch-size 4 --data-path "$TMP/sp_text_document" \
  --tokenizer-type HuggingFaceTokenizer --train-iters 1

# Bad input: one line, exit 2.
expect_error "--num-query-groups (3) must divide --num-attention-heads (8)" \
  "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 1 --num-query-groups 3
expect_error "--num-query-groups (2) must be divisible by --tensor-model-parallel-size (4)" \
  "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 1 --tensor-model-parallel-size 4
expect_error "--use-rope-scaling needs --position-embedding-type rope" \
  "$LOOM" train "${MODEL[@]}" "${COMMON[@]}" --train-iters 1 --position-embedding-type learned_absolute
expect_error "unknown --model-preset 'llama9-1t'" "$LOOM" train --model-preset llama9-1t
expect_error "--model-preset llama3.2-1b is a llama model, not --model gpt" "$LOOM" plan --model-preset llama3.2-1b --model gpt
# SwiGLU with linear biases (no --disable-bias-linear): gate and up each get a bias. 2 x (LayerNorms 256 + QKV
# 3 x 64 x 64 + 192 + proj 64 x 64 + 64 + gate/up 2 x (128 x 64 + 128) + fc2 128 x 64 + 64) + word embedding
# 50304 x 64 + positions 32 x 64 + final LayerNorm 128 = 3,305,216.
run "$LOOM" train --num-layers 2 --hidden-size 64 --num-attention-heads 4 --ffn-hidden-size 128 --seq-length 32 \
  --max-position-embeddings 32 --swiglu "${COMMON[@]}" --train-iters 20 --log-interval 10 --eval-iters 0
[ "$CODE" -eq 0 ] || fail "SwiGLU with biases exited $CODE: $ERR"
expect_line "  disable_bias_linear ............................. False"
expect_line " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 3305216"
expect_error "unknown model family 'bert'" "$LOOM" train --model bert
finish
