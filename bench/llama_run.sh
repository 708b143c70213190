#!/usr/bin/env bash
# Loom against PyTorch (Debian's python3-torch, the plain-PyTorch Llama of tests/parity/llama_ref.py) on the
# same Llama training step: a 124M-class Llama (L12 h768, 12 heads in 4 key/value groups, SwiGLU ffn 2048,
# vocabulary 32000, untied), mb 4 seq 256, fp32 and bf16 (Loom --bf16 against PyTorch's bf16 autocast).
# The two peers alternate RUNS times (default 3) so the machine's drift hits both; every pair's ratio is
# printed, then the median and spread.   Usage: bench/llama_run.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
STEPS=${STEPS:-4}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
run_clean() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$THREADS" "$@"; }
MODEL=(--arch llama --layers 12 --hidden 768 --heads 12 --groups 4 --ffn 2048 --seq 256 --micro-batch 4 --vocab 32000)
tokens() { sed -E 's/.*"tokens_per_s": ([0-9.]+).*/\1/' <<<"$1"; }
for precision in fp32 bf16; do
  tp=(--autocast none); [ "$precision" = bf16 ] && tp=(--autocast bf16)
  ratios=()
  for r in $(seq "$RUNS"); do
    loom=$(run_clean "$BUILD/bench/gpt_step_bench" "${MODEL[@]}" --precision "$precision" --steps "$STEPS" --threads "$THREADS")
    torch=$(run_clean /usr/bin/python3 bench/torch_gpt.py "${MODEL[@]}" "${tp[@]}" --steps "$STEPS" --threads "$THREADS" \
            --openblas-coretype inherit)
    l=$(tokens "$loom"); t=$(tokens "$torch")
    ratio=$(awk -v l="$l" -v t="$t" 'BEGIN { printf "%.2f", l / t }')
    ratios+=("$ratio")
    echo "$precision run $r: Loom $l tokens/s, PyTorch $t tokens/s, ratio ${ratio}x"
  done
  printf '%s\n' "${ratios[@]}" | sort -n | awk -v p="$precision" '{ a[NR] = $1 } END {
    printf "%s: median ratio %.2fx (spread %.2f-%.2f over %d interleaved runs)\n", p, a[int((NR + 1) / 2)], a[1], a[NR], NR }'
done
