#!/usr/bin/env bash
# One whole small-CoCa training step (forward of both losses, backward, clipping, DeepSpeed FusedLamb over
# EVA-CLIP's layer-decay groups, the logit_scale clamp), fp32: Loom (bench/coca_step_bench.cpp, CocaStep
# as `loom train --model coca` runs it) against the plain-PyTorch CoCa of tests/parity/coca_reference.py
# (bench/coca_step_torch.py, the parity test's reference with its LAMB) at its BENCH shape (ViT 4 x 256
# on 64 px, patch 8, 64 image tokens; text and decoder 4 x 256, context 77, vocab 8192), same threads,
# in interleaved rounds (the order alternates: Loom first, then PyTorch first). Prints images/s of both,
# the PyTorch / Loom time ratio per round by wall and by process CPU time (the latter steadier on a
# machine shared with other work) as median [min-max] over rounds, each side's forward / backward /
# optimizer split, and Loom's model GFLOP/s as a fraction of the GEMM ceiling: this machine's SGEMM
# rate (bench/sgemm_rate, after the rounds) by wall time, and per CPU-second the best rate of the step's
# own big GEMM shapes timed in the same process.
# Usage: bench/coca_step.sh [build-dir]; env BATCH (16), STEPS (2), WARMUP (1), ROUNDS (3), THREADS (2),
# RECOMPUTE (0, Loom only: full activation recompute per block).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${1:-build}
BATCH=${BATCH:-16} STEPS=${STEPS:-2} WARMUP=${WARMUP:-1} ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-2}
RECOMPUTE=${RECOMPUTE:-0}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# The same BLAS and OpenMP settings for both (as bench/coca_text.sh); PyTorch also gets torch_gpt.py's
# malloc tunables (freed activations stay in the heap, no page faults per step).
run_clean() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
    MKL_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE "$@"
}
tunables="glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184"
/usr/bin/python3 bench/coca_step_torch.py --print-config > "$TMP/config.json"
loom() {
  run_clean "$BUILD/bench/coca_step_bench" --config "$TMP/config.json" --batch "$BATCH" --steps "$STEPS" \
    --warmup "$WARMUP" --recompute "$RECOMPUTE" >> "$TMP/loom.jsonl"
}
torch() {
  GLIBC_TUNABLES=$tunables run_clean /usr/bin/python3 bench/coca_step_torch.py --batch "$BATCH" --steps "$STEPS" \
    --warmup "$WARMUP" --threads "$THREADS" >> "$TMP/torch.jsonl"
}
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then loom; torch; else torch; loom; fi
done
run_clean "$BUILD/bench/sgemm_rate" > "$TMP/sgemm.json"
/usr/bin/python3 - "$TMP" <<'PY'
import json, statistics, sys
d = sys.argv[1]
L = [json.loads(l) for l in open(d + "/loom.jsonl")]
T = [json.loads(l) for l in open(d + "/torch.jsonl")]
cfg = json.load(open(d + "/config.json"))
sgemm = json.load(open(d + "/sgemm.json"))
med = lambda rows, k: statistics.median(r[k] for r in rows)
spread = lambda xs: f"{statistics.median(xs):.2f}x [{min(xs):.2f}-{max(xs):.2f}]"
b, n = L[0]["batch"], len(L)
lw, tw, lc, tc = med(L, "sec_per_step"), med(T, "sec_per_step"), med(L, "cpu_sec_per_step"), med(T, "cpu_sec_per_step")
print(f"CoCa step (ViT {cfg['layers']}x{cfg['width']} on {cfg['image_size']} px patch {cfg['patch_size']}, "
      f"text/decoder {cfg['text_layers']}x{cfg['text_width']}, context {cfg['context']}, vocab {cfg['vocab']}), "
      f"fp32, batch {b}, {L[0]['threads']} threads, recompute {L[0]['recompute']}, {n} interleaved rounds")
for name, rows, w, c in (("Loom   ", L, lw, lc), ("PyTorch", T, tw, tc)):
    split = ", ".join(f"{k} {med(rows, k + '_s'):.2f}" for k in ("forward", "backward", "optimizer"))
    print(f"  {name} {b / w:7.3f} images/s  ({w:.2f} s/step wall, {c:.2f} s CPU; wall s: {split})")
print(f"  ratio (PyTorch time / Loom time, per round): {spread([t['sec_per_step'] / l['sec_per_step'] for l, t in zip(L, T)])}"
      f" by wall time, {spread([t['cpu_sec_per_step'] / l['cpu_sec_per_step'] for l, t in zip(L, T)])} by CPU time")
fb = lambda r: r["forward_s"] + r["backward_s"]
print(f"  forward + backward alone (wall): {spread([fb(t) / fb(l) for l, t in zip(L, T)])}; optimizer step (norm, "
      f"clipping, LAMB, clamp): Loom {med(L, 'optimizer_s'):.2f} s, PyTorch {med(T, 'optimizer_s'):.2f} s")
gflop_step = cfg["gflop_per_image"] * b
ceiling = sgemm.get("best_gflops") or max(s["gflops"] for s in sgemm["shapes"])
print(f"  Loom {gflop_step / lw:.1f} GFLOP/s of model GEMMs ({cfg['gflop_per_image']:.2f} GFLOP/image fwd+bwd) = "
      f"{gflop_step / lw / ceiling:.0%} of the SGEMM rate measured after the rounds ({ceiling:.1f} GFLOP/s)")
gc = med(L, "gemm_gflops_per_cpu_s")
print(f"  per CPU-second: Loom {gflop_step / lc:.1f} GFLOP = {gflop_step / lc / gc:.0%} of the step's own GEMM shapes' "
      f"{gc:.1f} (timed in the same process), PyTorch {gflop_step / tc:.1f} = {gflop_step / tc / gc:.0%}")
PY
