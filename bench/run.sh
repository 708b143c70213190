#!/usr/bin/env bash
# Loom against PyTorch (Debian's python3-torch) on the same GPT training step, in one run:
# fp32, dropout 0, forward + backward + clipping + AdamW, 2 threads, random tokens.
# Both run with the same BLAS settings: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset, so OpenBLAS picks
# its kernels for this CPU (the test suite keeps the machine's settings).
# Usage: bench/run.sh [build-dir]   (env STEPS=N to change the timed iterations)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
STEPS=${STEPS:-5}
THREADS=${THREADS:-2}
run_clean() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$THREADS" "$@"; }

sgemm=$(run_clean "$BUILD/bench/sgemm_rate")
best=$(sed -E 's/.*"best_gflops": ([0-9.]+).*/\1/' <<<"$sgemm")
echo "SGEMM (Loom's OpenBLAS, $THREADS threads): $sgemm"

compare() {  # name, then the shared model flags (PRECISION=bf16: Loom's --bf16 against PyTorch's bf16 autocast)
  local name=$1
  shift
  local loom torch
  local lp=(--precision fp32) tp=(--autocast none)
  [ "${PRECISION:-fp32}" = bf16 ] && lp=(--precision bf16) tp=(--autocast bf16)
  loom=$(run_clean "$BUILD/bench/gpt_step_bench" "$@" "${lp[@]}" --steps "$STEPS" --threads "$THREADS")
  torch=$(run_clean /usr/bin/python3 bench/torch_gpt.py "$@" "${tp[@]}" --steps "$STEPS" --threads "$THREADS" \
          --openblas-coretype inherit)
  local lt pt
  lt=$(sed -E 's/.*"tokens_per_s": ([0-9.]+).*/\1/' <<<"$loom")
  pt=$(sed -E 's/.*"tokens_per_s": ([0-9.]+).*/\1/' <<<"$torch")
  local tf
  tf=$(sed -E 's/.*"tflops": ([0-9.]+).*/\1/' <<<"$loom")
  echo "$name loom:  $loom"
  echo "$name torch: $torch"
  awk -v n="$name" -v l="$lt" -v p="$pt" -v t="$tf" -v s="$best" 'BEGIN {
    printf "%s: Loom %.1f tokens/s, PyTorch %.1f tokens/s, ratio %.2fx; Loom model %.1f GFLOP/s = %.0f%% of measured SGEMM (%.1f)\n",
           n, l, p, l / p, t * 1000, 100 * t * 1000 / s, s }'
}

compare "GPT-2 124M (L12 h768, mb4 seq256)" --layers 12 --hidden 768 --heads 12 --seq 256 --micro-batch 4 --vocab 50304
compare "GPT 16M (L4 h256, mb8 seq256)" --layers 4 --hidden 256 --heads 4 --seq 256 --micro-batch 8 --vocab 50304
PRECISION=bf16 compare "GPT-2 124M bf16 (Loom --bf16 vs PyTorch bf16 autocast)" --layers 12 --hidden 768 --heads 12 --seq 256 --micro-batch 4 --vocab 50304
