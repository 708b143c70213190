#!/usr/bin/env bash
# Half-precision activations: throughput and activation memory of fp32, --bf16 and --fp16 on a block-heavy
# GPT (12 layers, h 512, seq 256, micro-batches of 4 sequences, one in flight), medians of 3 interleaved runs,
# against PyTorch on the same model in fp32 and under bf16 autocast (bench/torch_gpt.py).
# Usage: bench/half_activations.sh [build-dir]
source "$(dirname "$0")/lib.sh"
ARGS=(--num-layers 12 --hidden-size 512 --num-attention-heads 8 --seq-length 256 --micro-batch-size 4 --global-batch-size 8
      --train-iters 6 --log-interval 3 --lr 1e-4 --eval-iters 0 --data-path "$TMP/kjv_text_document"
      --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt)
tps() { grep -oE 'tokens per second per GPU: [0-9.]+' "$1" | tail -1 | awk '{print $NF}'; }
act() { grep -oE 'activations \(MB\) .*total: [0-9.]+' "$1" | awk '{print $NF}'; }
declare -A steps mem
for run in 1 2 3; do
  for p in fp32 bf16 fp16; do
    flags=()
    [ "$p" = bf16 ] && flags=(--bf16)
    [ "$p" = fp16 ] && flags=(--fp16 --initial-loss-scale 4096)
    OMP_NUM_THREADS=2 "$BUILD/loom" train "${ARGS[@]}" "${flags[@]}" > "$TMP/$p.log"
    steps[$p]+="$(tps "$TMP/$p.log") "
    mem[$p]=$(act "$TMP/$p.log")
  done
  for p in none bf16; do
    /usr/bin/python3 bench/torch_gpt.py --layers 12 --hidden 512 --heads 8 --seq 256 --micro-batch 4 --vocab 50304 \
      --threads 2 --steps 4 --autocast "$p" > "$TMP/torch.json"
    steps[torch_$p]+="$(/usr/bin/python3 -c "import json; print(json.load(open('$TMP/torch.json'))['tokens_per_s'])") "
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | sed -n 2p; }
f32=$(median "${steps[fp32]}")
t32=$(median "${steps[torch_none]}")
t16=$(median "${steps[torch_bf16]}")
for p in fp32 bf16 fp16; do
  m=$(median "${steps[$p]}")
  peer=$t32
  [ "$p" != fp32 ] && peer=$t16
  awk -v p="$p" -v m="$m" -v f="$f32" -v t="$peer" -v a="${mem[$p]}" -v a32="${mem[fp32]}" 'BEGIN {
    printf "Loom %-5s %7.1f tokens/s (%.2fx of Loom fp32, %.2fx of PyTorch %s)  activations %7.2f MB (%.2fx of fp32)\n",
      p, m, m / f, m / t, p == "fp32" ? "fp32" : "bf16 autocast", a, a / a32 }'
done
echo "PyTorch fp32 $t32 tokens/s, bf16 autocast $t16 tokens/s"
