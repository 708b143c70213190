#!/usr/bin/env bash
# CoCa's vision tower (EVA-02 ViT-B/16 + attentional poolers, 224 px) forward + backward: Loom
# (bench/coca_vision_bench.cpp) against the same model in plain PyTorch (bench/coca_vision_torch.py, the
# parity test's reference) on the same number of threads, in interleaved rounds, medians over rounds.
# Prints images/s of both, the ratio by wall time and by process CPU time (the latter is steadier on a
# machine shared with other work), and Loom's model GFLOP/s as a fraction of this machine's SGEMM rate (by wall
# time, and per CPU-second against the tower's own q/k/v GEMM timed in the same process).
# Usage: bench/coca_vision.sh [build-dir]; env BATCH (8), STEPS (2), WARMUP (1), ROUNDS (3), THREADS (2),
# RECOMPUTE (0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${1:-build}
BATCH=${BATCH:-8} STEPS=${STEPS:-2} WARMUP=${WARMUP:-1} ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-2}
RECOMPUTE=${RECOMPUTE:-0}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE
for r in $(seq "$ROUNDS"); do
  "$BUILD/bench/coca_vision_bench" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --recompute "$RECOMPUTE" \
    >> "$TMP/loom.jsonl"
  /usr/bin/python3 bench/coca_vision_torch.py --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" \
    --threads "$THREADS" >> "$TMP/torch.jsonl"
done
"$BUILD/bench/sgemm_rate" > "$TMP/sgemm.json"
/usr/bin/python3 - "$TMP" <<'PY'
import json, statistics, sys
d = sys.argv[1]
L = [json.loads(l) for l in open(d + "/loom.jsonl")]
T = [json.loads(l) for l in open(d + "/torch.jsonl")]
med = lambda rows, k: statistics.median(r[k] for r in rows)
lw, tw = med(L, "sec_per_step"), med(T, "sec_per_step")
lc, tc = med(L, "cpu_sec_per_step"), med(T, "cpu_sec_per_step")
b = L[0]["batch"]
sgemm = json.load(open(d + "/sgemm.json"))
ceiling = sgemm.get("best_gflops") or max(s["gflops"] for s in sgemm["shapes"])
gflops = L[0]["gflop_per_image"] * b / lw
print(f"ViT-B/16 tower fwd+bwd, batch {b}, {L[0]['threads']} threads, {len(L)} interleaved rounds (medians)")
print(f"  Loom    {b / lw:7.3f} images/s  ({lw:.2f} s/step wall, {lc:.2f} s CPU)")
print(f"  PyTorch {b / tw:7.3f} images/s  ({tw:.2f} s/step wall, {tc:.2f} s CPU)")
print(f"  ratio   {tw / lw:.2f}x by wall time, {tc / lc:.2f}x by CPU time")
gflop_step = L[0]["gflop_per_image"] * b
print(f"  Loom {gflops:.1f} GFLOP/s of model GEMMs ({L[0]['gflop_per_image']:.1f} GFLOP/image) = "
      f"{gflops / ceiling:.0%} of the SGEMM rate measured after the rounds ({ceiling:.1f} GFLOP/s)")
gc = med(L, "gemm_gflops_per_cpu_s")
print(f"  per CPU-second: Loom {gflop_step / lc:.1f} GFLOP = {gflop_step / lc / gc:.0%} of its q/k/v GEMM's "
      f"{gc:.1f} (timed in the same process), PyTorch {gflop_step / tc:.1f}")
PY
