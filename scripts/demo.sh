#!/usr/bin/env bash
# The main job: tokenize the bundled King James Bible, train a small GPT on it with Megatron's log
# lines, then print a sample from the trained weights. Usage: scripts/demo.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LOOM=$BUILD/loom
OUT=${LOOM_DEMO_DIR:-runs/demo}
ITERS=${LOOM_DEMO_ITERS:-300}
mkdir -p "$OUT"

if [ ! -f "$OUT/kjv_text_document.idx" ]; then
  "$LOOM" preprocess --input data/corpus/kjv.jsonl --output-prefix "$OUT/kjv" \
    --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt --append-eod --workers "$(nproc)"
fi

"$LOOM" train \
  --num-layers 4 --hidden-size 192 --num-attention-heads 4 --seq-length 128 --max-position-embeddings 128 \
  --micro-batch-size 8 --global-batch-size 16 --train-iters "$ITERS" \
  --lr 2e-3 --min-lr 2e-4 --lr-decay-style cosine --lr-warmup-iters 20 --weight-decay 0.1 --clip-grad 1.0 \
  --adam-beta2 0.95 --hidden-dropout 0 --attention-dropout 0 \
  --log-interval 10 --eval-interval 100 --eval-iters 5 --split 949,50,1 --seed 1234 \
  --data-path "$OUT/kjv_text_document" --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt \
  --save "$OUT/checkpoints"

echo
echo "=== sample ==="
"$LOOM" generate --load "$OUT/checkpoints" --prompt "And God said" --max-new-tokens 60 --temperature 0.8 --top-k 40 --seed 7
