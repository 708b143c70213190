# Megatron's --log-num-zeros-in-grad and --log-params-norm: the iteration line's 'num zeros' and 'params
# norm' are the same in every layout as in one process (each parameter counted once: tensor-parallel
# replicas and the tied output copy once, ZeRO slices summed), the params norm equals the L2 norm of the
# saved weights, and the zero gradients are exactly the position-embedding rows no token reaches. Without
# linear biases: the key biases' true gradient is zero (a constant added to every key of a query does not
# change its softmax), so theirs is rounding noise that lands on an exact 0.0 in some layouts and not others.
source "$(dirname "$0")/loom_mpi_lib.sh"
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --max-position-embeddings 48
      --micro-batch-size 2 --global-batch-size 8 --train-iters 3 --lr 3e-3 --log-interval 1 --eval-iters 0
      --hidden-dropout 0 --attention-dropout 0 --split 100,0,0 --log-num-zeros-in-grad --log-params-norm
      --disable-bias-linear
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
MPI=(timeout -k 5 300 "$MPIRUN" --allow-run-as-root --oversubscribe)
field() { grep -oE "$2: [0-9.]+" "$1" | awk '{print $NF}'; }

"$LOOM" train "${ARGS[@]}" --save "$TMP/ckpt" > "$TMP/one.log" 2>&1 || { fail "one process"; cat "$TMP/one.log"; }
# (48 - 32) unused positions x 64 channels: their gradient is exactly zero; every other element is not.
for z in $(field "$TMP/one.log" "num zeros"); do
  [ "$z" = "1024.0" ] || fail "one process: num zeros $z, expected 1024.0 (16 unused position rows x 64)"
done
/usr/bin/python3 - "$TMP/ckpt" "$(field "$TMP/one.log" "params norm" | tail -1)" <<'PY' || fail "params norm vs the saved weights"
import glob, json, os, sys
sys.path.insert(0, os.path.join(os.environ["LOOM_SOURCE_DIR"], "tests", "parity"))
import numpy as np
from safetensors_np import load_file
it = open(os.path.join(sys.argv[1], "latest_checkpointed_iteration.txt")).read().strip()
d = glob.glob(os.path.join(sys.argv[1], "iter_*" + it))[0]
sq = 0.0
for f in glob.glob(os.path.join(d, "*.safetensors")):
    for k, v in load_file(f).items():
        if k.startswith("model/"):
            sq += float(np.sum(np.asarray(v, np.float64) ** 2))
want, got = np.sqrt(sq), float(sys.argv[2])
print(f"params norm: saved weights {want:.6f}, logged {got}")
sys.exit(0 if abs(want - got) <= 0.0005 + 1e-6 * want else 1)
PY
for layout in "2 2 1 0" "4 2 1 2" "2 1 2 0" "2 1 1 3"; do
  set -- $layout
  np=$1 tp=$2 pp=$3 zero=$4
  extra=(--pipeline-model-parallel-size "$pp" --zero-stage "$zero")
  [ "$tp" -gt 1 ] && extra+=(--tensor-model-parallel-size "$tp" --sequence-parallel --make-vocab-size-divisible-by $((128 / tp)))
  name="np${np}_tp${tp}_pp${pp}_z${zero}"
  "${MPI[@]}" -np "$np" "$LOOM" train "${ARGS[@]}" "${extra[@]}" > "$TMP/$name.log" 2>&1 || { fail "$name exited non-zero"; tail -5 "$TMP/$name.log"; }
  [ "$(field "$TMP/$name.log" "num zeros" | tr '\n' ' ')" = "$(field "$TMP/one.log" "num zeros" | tr '\n' ' ')" ] ||
    fail "$name: num zeros $(field "$TMP/$name.log" "num zeros" | tr '\n' ' ') differ from one process"
  paste <(field "$TMP/one.log" "params norm") <(field "$TMP/$name.log" "params norm") | awk -v n="$name" '
    { d = $1 - $2; if (d < 0) d = -d; if (d > 0.0015) { bad = 1; print n ": params norm " $1 " vs " $2 } } END { exit bad }' ||
    fail "$name: params norm differs from one process"
done
[ $status -eq 0 ] && echo "num zeros and params norm checks passed"
exit $status
