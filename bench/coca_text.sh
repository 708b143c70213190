#!/usr/bin/env bash
# CoCa-B/16 text tower + caption decoder fwd+bwd: loom against the plain-PyTorch reference, in one run, on
# the same threads. The CPU time is the fairer figure on a loaded machine (with threads=1). usage: bench/coca_text.sh [batch=4] [iterations=3] [threads=2]  (BUILD=build dir)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
B=${1:-4} N=${2:-3} T=${3:-2}
# The same BLAS and OpenMP settings for both (as bench/run.sh: OpenBLAS picks its kernels for this CPU;
# waiting threads sleep, which matters on a shared machine); PyTorch also gets torch_gpt.py's malloc
# tunables (freed activations stay in the heap, no page faults per step).
run_clean() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$T" OPENBLAS_NUM_THREADS="$T" MKL_NUM_THREADS="$T" \
    OMP_WAIT_POLICY=PASSIVE "$@"
}
tunables="glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184"
loom_line=$(run_clean "$build/bench/coca_text_bench" "$B" "$N" | tail -1)
torch_line=$(GLIBC_TUNABLES=$tunables run_clean /usr/bin/python3 "$here/coca_text_torch.py" "$B" "$N" "$T" | tail -1)
echo "$loom_line"
echo "$torch_line"
wall() { sed -E 's/.*: ([0-9.]+) s\/iter wall.*/\1/' <<<"$1"; }
cpu() { sed -E 's/.* ([0-9.]+) s\/iter cpu.*/\1/' <<<"$1"; }
awk -v l="$(wall "$loom_line")" -v t="$(wall "$torch_line")" -v lc="$(cpu "$loom_line")" -v tc="$(cpu "$torch_line")" \
  'BEGIN { printf "speed-up (torch time / loom time): %.2fx wall, %.2fx cpu\n", t / l, tc / lc }'
