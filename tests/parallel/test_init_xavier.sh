# --init-method-xavier-uniform: every weight Megatron initialises with init_method or its output-layer
# init (word and position embeddings, QKV, attention projection, fc1, fc2, an untied output layer) is
# torch.nn.init.xavier_uniform_ of the full tensor: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) with torch's
# fans of Megatron's shape (SwiGLU's fused fc1 is one [2 ffn, h] tensor); biases 0, norms 1. Checked
# against torch's own bound, moments and a uniform histogram; the same model at TP2 (mpirun -np 2) and
# on one process, bit for bit. A run without the flag keeps normal(0, 0.02) with the scaled projections.
source "$(dirname "$0")/loom_mpi_lib.sh"
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --lr 0 --train-iters 1 --log-interval 1 --eval-iters 0 --split 100,0,0 --make-vocab-size-divisible-by 64
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
init_weights() {  # init_weights NAME NP FLAGS...: the initial full weights as $TMP/NAME.safetensors (lr 0, one step)
  local name=$1 np=$2
  shift 2
  "${MPI[@]}" -np "$np" "$LOOM" train "${ARGS[@]}" "$@" --save "$TMP/$name" > "$TMP/$name.log" 2>&1 \
    || { fail "$name run"; tail -3 "$TMP/$name.log"; return; }
  "$LOOM" convert --load "$TMP/$name" --to safetensors --output "$TMP/$name.safetensors" > /dev/null || fail "$name convert"
}
init_weights gpt 1 --init-method-xavier-uniform
init_weights gpt_tp2 2 --init-method-xavier-uniform --tensor-model-parallel-size 2
init_weights llama 1 --init-method-xavier-uniform --swiglu --disable-bias-linear --normalization RMSNorm \
  --position-embedding-type rope --untie-embeddings-and-output-weights --ffn-hidden-size 96
init_weights llama_tp2 2 --init-method-xavier-uniform --swiglu --disable-bias-linear --normalization RMSNorm \
  --position-embedding-type rope --untie-embeddings-and-output-weights --ffn-hidden-size 96 --tensor-model-parallel-size 2
init_weights normal 1
cmp -s "$TMP/gpt.safetensors" "$TMP/gpt_tp2.safetensors" || fail "xavier init: TP2 differs from one process"
cmp -s "$TMP/llama.safetensors" "$TMP/llama_tp2.safetensors" || fail "xavier init (SwiGLU, untied): TP2 differs from one process"
/usr/bin/python3 - "$TMP" "$SRC/tests/parity" <<'PY' || fail "xavier statistics"
import math, sys
sys.path.insert(0, sys.argv[2])
import numpy as np, torch
from safetensors_np import load_file
tmp = sys.argv[1]
def torch_bound(shape):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    return math.sqrt(3.0) * 1.0 * math.sqrt(2.0 / float(fan_in + fan_out))  # xavier_uniform_, gain 1
bad, seen = [], 0
for run, ffn in (("gpt", 256), ("llama", 96)):
    w = load_file(f"{tmp}/{run}.safetensors")
    for name, t in w.items():
        t = np.asarray(t, np.float64)
        if name.endswith("bias"):
            if np.any(t != 0): bad.append(f"{run} {name}: bias not zero")
            continue
        if t.ndim == 1:
            if np.any(t != 1): bad.append(f"{run} {name}: norm weight not one")
            continue
        shape = list(t.shape)
        if name.endswith("linear_fc1_gate.weight") or name.endswith("linear_fc1_up.weight"):
            shape = [2 * ffn, shape[1]]  # Megatron's one fused fc1
        a = torch_bound(shape)
        n, m = t.size, np.abs(t).max()
        seen += 1
        if m > float(np.float32(a)): bad.append(f"{run} {name}: max |w| {m:.9g} > xavier bound {a:.9g} (as float32)")
        if m < a * (1 - 20.0 / n): bad.append(f"{run} {name}: max |w| {m:.6g} well below the bound {a:.6g}")
        mean, var = t.mean(), t.var()
        if abs(mean) > 5 * a / math.sqrt(3 * n): bad.append(f"{run} {name}: mean {mean:.3g}")
        if abs(var / (a * a / 3) - 1) > 6 * math.sqrt(0.8 / n) + 1e-3: bad.append(f"{run} {name}: var {var:.4g} vs {a*a/3:.4g}")
        hist, _ = np.histogram(t, bins=10, range=(-a, a))
        expect = n / 10
        chi2 = float(((hist - expect) ** 2 / expect).sum())
        if chi2 > 40: bad.append(f"{run} {name}: histogram chi2 {chi2:.1f} (9 dof)")
        print(f"{run:6s} {name:55s} {str(list(t.shape)):12s} bound {a:.5f} max {m:.5f} std/(a/sqrt3) {math.sqrt(var)/(a/math.sqrt(3)):.4f} chi2 {chi2:.1f}")
w = load_file(f"{tmp}/normal.safetensors")
for name, t in w.items():
    t = np.asarray(t, np.float64)
    if t.ndim != 2: continue
    std = 0.02 / math.sqrt(4.0) if ("linear_proj" in name or "linear_fc2" in name) else 0.02
    if abs(t.std() / std - 1) > 0.05: bad.append(f"normal {name}: std {t.std():.4g}, expected {std:.4g}")
assert seen >= 14, seen
for b in bad: print("BAD:", b)
sys.exit(1 if bad else 0)
PY
[ $status -eq 0 ] && echo "all xavier init checks passed"
exit $status
