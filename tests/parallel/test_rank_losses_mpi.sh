# EVA-CLIP's NaN/Inf loss check (src/loom/train/rank_losses.h) on 1, 2 and 4 ranks: every rank gets all
# ranks' losses in rank order, their mean, and the ` ==================== loss_isnan = ...` line exactly
# as EVA-CLIP's f-string over torch tensors prints it (computed here by PyTorch), or no line when every
# loss is finite.
set -u
: "${MPIRUN:?}" "${LAYOUT_DRIVER:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
DRIVER=$(dirname "$LAYOUT_DRIVER")/rank_losses_driver
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cases=("2.5" "nan" "1.25 nan" "7.75 1.5 inf 0.125" "1 -inf nan 2" "29.341 24.314 7.7311 21.609")
for i in "${!cases[@]}"; do
  read -r -a v <<< "${cases[$i]}"
  timeout -k 5 60 "$MPIRUN" --oversubscribe -np "${#v[@]}" "$DRIVER" "${v[@]}" > "$TMP/out$i" 2>"$TMP/err$i" \
    || { echo "FAIL: ${cases[$i]}: driver failed: $(cat "$TMP/err$i")"; exit 1; }
done
/usr/bin/python3 - "$TMP" "${cases[@]}" <<'PY'
import math, sys, torch
tmp, cases, status = sys.argv[1], sys.argv[2:], 0
for i, case in enumerate(cases):
    vals = [float(v) for v in case.split()]
    # training/train.py: loss_list = torch.tensor(all-gathered 0-dim losses); .isnan().any(); the f-string
    loss_list = torch.tensor([torch.tensor(v, dtype=torch.float32) for v in vals])
    isnan, isinf = torch.isnan(loss_list).any(), torch.isinf(loss_list).any()
    line = f" ==================== loss_isnan = {isnan},  loss_isinf = {isinf} ==================== " if (isnan or isinf) else ""
    f32 = loss_list.tolist()
    mean = sum(f32) / len(f32)
    got = sorted(open("%s/out%d" % (tmp, i)).read().splitlines())
    ok = len(got) == len(vals)
    for r, g in enumerate(got):
        head, rest = g.split(" mean=", 1)
        m, rest = rest.split(" losses=", 1)
        ls, ln = rest.split(" line=", 1)
        gl = [float.fromhex(x.lstrip("-")) if "nan" in x else float.fromhex(x) for x in ls.split()]
        same = lambda a, b: (math.isnan(a) and math.isnan(b)) or a == b
        ok &= head == "rank %d:" % r and same(float(m), mean) and ln == "[%s]" % line
        ok &= len(gl) == len(f32) and all(same(a, b) for a, b in zip(gl, f32))
    print(("ok  " if ok else "FAIL") + " np %d losses %s -> %r" % (len(vals), vals, line))
    if not ok:
        print("\n".join(got))
        status = 1
sys.exit(status)
PY
