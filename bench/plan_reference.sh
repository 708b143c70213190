#!/usr/bin/env bash
# `loom plan` against the reference logs (on the hardware each ran on, as far as the logs and analyses
# tell) and against the published Megatron-LM scaling table (Narayanan et al. 2021, "Efficient
# Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", Table 1: GPT 1.7B..1T on
# Selene's DGX A100 80 GB nodes): predicted step time beside the logged or published one, and whether
# `loom plan --search` finds a layout at least as fast as the published one. Needs no data, no GPU.
# Usage: bench/plan_reference.sh [build-dir]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOOM=${1:-build}/loom
step() { grep -oE '^ elapsed time per iteration \(ms\): [0-9.]+' | awk '{print $NF}'; }
row() { printf "%-44s %12s %12s %8s\n" "$1" "$2" "$3" "$(awk -v p="$3" -v m="$2" 'BEGIN {printf "%+.1f%%", 100 * (p / m - 1)}')"; }

echo "== reference logs (predicted vs logged step time, ms)"
printf "%-44s %12s %12s %8s\n" "run (assumed hardware)" logged predicted error
G2=(--model-preset gpt2-1.5b --micro-batch-size 8 --global-batch-size 64 --fp16 --recompute-granularity full --unfused-attention)
row "002 GPT-2 1.5B, 1 x A100-80G" 7450 "$("$LOOM" plan "${G2[@]}" --hardware A100-80G | step)"
row "002 GPT-2 1.5B, 1 x A100-40G" 7450 "$("$LOOM" plan "${G2[@]}" --hardware A100-40G | step)"
"$LOOM" plan "${G2[@]}" --hardware A100-80G | grep '^ > predicted memory' | sed 's/^/    002 /'
echo "    002 logged: 30132 MB allocated, 30538 MB reserved"
G1=(--num-layers 4 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --max-position-embeddings 1024
    --micro-batch-size 24 --global-batch-size 96 --world-size 4 --zero-stage 2 --offload-optimizer cpu
    --recompute-granularity full --fp16 --unfused-attention)
row "001 GPT-2 4L ZeRO-2 offload, 4 x V100-32G" 904.7 "$("$LOOM" plan "${G1[@]}" --hardware V100-32G | step)"
"$LOOM" plan "${G1[@]}" --hardware V100-32G | grep '^ > predicted memory' | sed 's/^/    001 /'
echo "    001 logged: forward 318, backward 500, optimizer 85 ms; 14.6 GB allocated at peak"
G4=(--num-layers 16 --hidden-size 2048 --num-attention-heads 32 --ffn-hidden-size 8192 --seq-length 2048
    --max-position-embeddings 2048 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 4
    --num-layers-per-virtual-pipeline-stage 1 --micro-batch-size 2 --global-batch-size 16 --fp16 --recompute-activations)
row "004 GPT 0.9B TP2 PP4 VPP4, 8 x RTX4090 (it. 1)" 4493.2 "$("$LOOM" plan "${G4[@]}" --hardware RTX4090 | step)"
"$LOOM" plan "${G4[@]}" --hardware RTX4090 | grep '^ > predicted memory' | sed 's/^/    004 /'
echo "    004 logged: peak 7706 / 7151 / 7087 / 6714 MB per stage (iteration 1 only: warm-up, skipped step)"
for S in 1024 512 256; do
  G3=(--model-preset llama3.2-1b --seq-length "$S" --pipeline-model-parallel-size 8 --micro-batch-size 1 --global-batch-size 32)
  out=$("$LOOM" plan "${G3[@]}" --hardware A40)
  row "003 Llama-3.2-1B PP8, 8 x A40, seq $S" 1619.9 "$(step <<<"$out")"
  grep '^ > predicted forward' <<<"$out" | sed "s/^/    003 seq $S /"
done
echo "    003 logged forward per micro-batch (leaf modules only): transformer layer 1.2-1.4 ms, lm_head 4.17 ms, embed 0.03 ms"
# 000: the GPUs are not named in the log; its 28.74 GB peak needs a board of 32 GB or more. Each candidate
# is predicted; the logged step is the mean of EVA-CLIP's Batch (t) from step 101 to 1601 (1.839 s).
C0=(--model-preset coca-b16 --batch-size 512 --world-size 4 --precision amp --enable-deepspeed --zero-stage 1
    --optimizer lamb --grad-checkpointing)
batch_ms() { sed -nE 's/^ Batch \(t\): ([0-9.]+),.*/\1/p' | awk '{printf "%.1f", $1 * 1000}'; }
for HW in V100-32G A100-40G A100-80G; do
  row "000 CoCa-B/16 DP4 ZeRO-1 LAMB, 4 x $HW" 1839 "$("$LOOM" plan "${C0[@]}" --hardware "$HW" | batch_ms)"
done
"$LOOM" plan "${C0[@]}" | grep -A1 '^ > predicted GPU memory' | sed 's/^/    000 /'
mem() { sed -nE "s/.* $1=([0-9.]+)GB.*/\1/p" | head -1; }
out=$("$LOOM" plan "${C0[@]}")
row "000 memory: MemAllocated (GB)" 5.29 "$(mem MemAllocated <<<"$out")"
row "000 memory: MaxMemAllocated (GB)" 28.74 "$(mem MaxMemAllocated <<<"$out")"

echo
echo "== Narayanan et al. 2021, Table 1 (A100-80G, fp16, seq 2048, vocab 51200; assumed: full recompute, micro-batch 1, 1F1B)"
printf "%-8s %-14s %10s %10s %8s | %-40s %10s\n" model layout published predicted error "search's best (flags)" "its ms"
TABLE="1.7B 24 2304 24 1 1 32 512 137
3.6B 32 3072 30 2 1 64 512 138
7.5B 32 4096 36 4 1 128 512 142
18.4B 48 6144 40 8 1 256 1024 135
39.1B 64 8192 48 8 2 512 1536 138
76.1B 80 10240 60 8 4 1024 1792 140
145.6B 96 12288 80 8 8 1536 2304 148
310.1B 128 16384 96 8 16 1920 2160 155
529.6B 128 20480 105 8 35 2520 2520 163
1008.0B 160 25600 128 8 64 3072 3072 163"
while read -r name a h l t p n b tf; do
  M=(--num-layers "$l" --hidden-size "$h" --num-attention-heads "$a" --seq-length 2048 --max-position-embeddings 2048
     --vocab-size 51200 --global-batch-size "$b" --fp16)
  # The paper's count (with recompute): 96 B s l h^2 (1 + s / 6h + V / 16 l h), at the published rate.
  pub=$(awk -v B="$b" -v l="$l" -v h="$h" -v tf="$tf" -v n="$n" \
    'BEGIN {s = 2048; V = 51200; F = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h)); printf "%.0f", F / (tf * 1e12 * n) * 1e3}')
  pred=$("$LOOM" plan "${M[@]}" --tensor-model-parallel-size "$t" --pipeline-model-parallel-size "$p" --world-size "$n" \
    --micro-batch-size 1 --recompute-granularity full --hardware A100-80G | step)
  best=$("$LOOM" plan "${M[@]}" --hardware A100-80G --search --gpus "$n" --top 1 | grep -E '^ #1 |mpirun' | tr '\n' ' ')
  bms=$(grep -oE 'elapsed time per iteration \(ms\): [0-9.]+' <<<"$best" | awk '{print $NF}')
  blay=$(grep -oE 'TP [0-9]+  PP [0-9]+  VPP [0-9]+  DP [0-9]+  micro-batch [0-9]+' <<<"$best" | tr -s ' ')
  brc=$(grep -oE 'recompute-granularity [a-z]+|zero-stage [0-9]|sequence-parallel' <<<"$best" | tr '\n' ' ')
  printf "%-8s %-14s %10s %10s %8s | %-40s %10s\n" "$name" "TP$t PP$p" "$pub" "$pred" \
    "$(awk -v p="$pred" -v m="$pub" 'BEGIN {printf "%+.1f%%", 100 * (p / m - 1)}')" "$blay ${brc}" "$bms"
done <<<"$TABLE"
