#!/usr/bin/env bash
# A small Llama on the bundled King James Bible with a tokenizer made from it: SentencePiece (Debian's
# spm_train, BPE, 4000 pieces) trained on the corpus, the corpus tokenised with it, a 4-layer Llama
# (RMSNorm, RoPE, 8 heads in 2 key/value groups, SwiGLU, untied) trained with Megatron's log lines, then a
# sample. Usage: scripts/llama_demo.sh [build-dir]   (LOOM_DEMO_ITERS, LOOM_DEMO_DIR to change)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LOOM=$BUILD/loom
OUT=${LOOM_DEMO_DIR:-runs/llama-demo}
ITERS=${LOOM_DEMO_ITERS:-300}
mkdir -p "$OUT"

if [ ! -f "$OUT/kjv_sp.model" ]; then
  # One chapter per line: its text, as plain lines for spm_train.
  /usr/bin/python3 -c 'import json,sys
for line in open(sys.argv[1]): print(json.loads(line)["text"])' data/corpus/kjv.jsonl > "$OUT/kjv.txt"
  spm_train --input "$OUT/kjv.txt" --model_prefix "$OUT/kjv_sp" --vocab_size 4000 --model_type bpe \
    --character_coverage 1.0 --byte_fallback --bos_id 1 --eos_id 2 --unk_id 0 --pad_id -1 --minloglevel 2
fi
if [ ! -f "$OUT/kjv_text_document.idx" ]; then
  "$LOOM" preprocess --input data/corpus/kjv.jsonl --output-prefix "$OUT/kjv" \
    --tokenizer-type SentencePieceTokenizer --tokenizer-model "$OUT/kjv_sp.model" --append-eod --workers "$(nproc)"
fi

"$LOOM" train --model llama \
  --num-layers 4 --hidden-size 256 --num-attention-heads 8 --group-query-attention --num-query-groups 2 \
  --ffn-hidden-size 688 --seq-length 128 --max-position-embeddings 128 --untie-embeddings-and-output-weights \
  --micro-batch-size 8 --global-batch-size 16 --train-iters "$ITERS" \
  --lr 2e-3 --min-lr 2e-4 --lr-decay-style cosine --lr-warmup-iters 20 --weight-decay 0.1 --clip-grad 1.0 \
  --adam-beta2 0.95 --hidden-dropout 0 --attention-dropout 0 \
  --log-interval 10 --eval-interval 100 --eval-iters 5 --split 949,50,1 --seed 1234 \
  --data-path "$OUT/kjv_text_document" --tokenizer-type SentencePieceTokenizer --tokenizer-model "$OUT/kjv_sp.model" \
  --save "$OUT/checkpoints"

echo
echo "=== sample ==="
"$LOOM" generate --load "$OUT/checkpoints" --prompt "And God said" --max-new-tokens 60 --temperature 0.8 --top-k 40 --seed 7
