# The memory preflight under mpirun: every rank's predicted model states and activations equal its
# measured lines (PP2 1F1B, DP2 ZeRO-3, TP2), predictions are summed over the ranks of a node, and
# reference log 004's layout (TP2 x PP4 x VPP4, 0.9B parameters, 8 ranks) stops with one line naming the
# figures instead of being killed by the kernel while it builds the model.
source "$(dirname "$0")/loom_mpi_lib.sh"

COMMON=(--data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES" --split 90,10,0
  --num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2
  --lr 1e-3 --log-interval 2 --eval-interval 1000 --eval-iters 0 --threads 1)

# predicted vs measured, per rank: "rank states activations" lines from a run's output.
measured() {
  grep -E '^\[Rank [0-9]+\] (model states|activations)' | sort -s -k2,2n |
    awk '/model states/ { match($0, /total: [0-9.]+/); t = substr($0, RSTART + 7, RLENGTH - 7);
                          match($0, /working buffers: [0-9.]+/); w = substr($0, RSTART + 17, RLENGTH - 17);
                          r = $2; sub(/\]/, "", r); s[r] = sprintf("%.2f", t + w) }
         /activations/ { match($0, /total: [0-9.]+/); r = $2; sub(/\]/, "", r); a[r] = sprintf("%.2f", substr($0, RSTART + 7, RLENGTH - 7)) }
         END { for (r in s) print r, s[r], a[r] }' | sort -n
}
predicted() {
  grep -E '^\[Rank [0-9]+\] predicted memory' |
    awk '{ match($0, /model states: [0-9.]+/); s = substr($0, RSTART + 14, RLENGTH - 14);
           match($0, /activations: [0-9.]+/); a = substr($0, RSTART + 13, RLENGTH - 13);
           r = $2; sub(/\]/, "", r); print r, s, a }' | sort -n
}

check_layout() {  # check_layout NAME RANKS FLAGS...
  local name=$1 np=$2
  shift 2
  local out dry
  out=$("$MPIRUN" --oversubscribe -np "$np" "$LOOM" train "${COMMON[@]}" --train-iters 2 "$@" 2>&1) ||
    { fail "$name: training failed: $(tail -3 <<<"$out")"; return; }
  dry=$("$MPIRUN" --oversubscribe -np "$np" "$LOOM" train "${COMMON[@]}" --train-iters 0 "$@" 2>&1) ||
    { fail "$name: the dry run failed: $(tail -3 <<<"$dry")"; return; }
  local m p
  m=$(measured <<<"$out")
  p=$(predicted <<<"$dry")
  [ "$(wc -l <<<"$m")" -eq "$np" ] || fail "$name: expected $np ranks' memory lines, got: $m"
  # The dry run's predictions come from rank 0, one per rank in rank order.
  [ "$(grep -oE '^\[Rank [0-9]+\] predicted memory' <<<"$dry" | grep -oE '[0-9]+' | tr '\n' ' ')" = "$(seq -s ' ' 0 $((np - 1))) " ] ||
    fail "$name: the dry run's prediction lines are not one per rank in rank order"
  [ "$m" = "$p" ] || fail "$name: predicted (rank states activations) differ from measured:
$p
vs
$m"
  echo "$name: per rank (states, activations MB): $(tr '\n' ';' <<<"$p")"
}
check_layout "PP2 1F1B" 2 --global-batch-size 8 --pipeline-model-parallel-size 2
check_layout "DP2 ZeRO-3 fp16" 2 --global-batch-size 8 --zero-stage 3 --fp16
check_layout "TP2 SP" 2 --global-batch-size 4 --tensor-model-parallel-size 2 --sequence-parallel
check_layout "PP2 interleaved bf16" 2 --global-batch-size 8 --pipeline-model-parallel-size 2 \
  --num-layers-per-virtual-pipeline-stage 1 --bf16

# Two ranks on one node share its memory: a budget that holds one rank but not two refuses the pair and
# names the first change that fits (for this small, embedding-heavy model ZeRO-1: higher stages need fp32
# working copies of the embedding, more than they save).
one=$("$MPIRUN" --oversubscribe -np 2 "$LOOM" train "${COMMON[@]}" --train-iters 0 --global-batch-size 4 \
  --hidden-size 256 2>&1 | grep '^\[Rank 0\] predicted memory' | sed -E 's/.*peak: ([0-9.]+).*/\1/')
budget=$(awk -v p="$one" 'BEGIN { printf "%d", p * 1.72 }')
err=$(LOOM_MEMORY_AVAILABLE_MB=$budget "$MPIRUN" --oversubscribe -np 2 "$LOOM" train "${COMMON[@]}" \
  --train-iters 2 --global-batch-size 4 --hidden-size 256 2>&1 >/dev/null)
code=$?
[ "$code" -ne 0 ] || fail "two ranks over a one-rank budget were not refused"
[ "$(grep -c 'loom: error:' <<<"$err")" -eq 1 ] || fail "expected one error line, got: $err"
grep -q "(2 ranks; rank [01]: model states" <<<"$err" || fail "the refusal does not sum the node's ranks: $err"
grep -q "it would fit with --zero-stage 1 (about" <<<"$err" || fail "the refusal does not name ZeRO-1: $err"
out=$(LOOM_MEMORY_AVAILABLE_MB=$budget "$MPIRUN" --oversubscribe -np 2 "$LOOM" train "${COMMON[@]}" \
  --train-iters 2 --global-batch-size 4 --hidden-size 256 --zero-stage 1 2>&1) ||
  fail "the layout the refusal named does not run: $(tail -3 <<<"$out")"

# Reference log 004's layout on this machine: one line within seconds, not signal 9 minutes later.
LOG004=(--num-layers 16 --hidden-size 2048 --num-attention-heads 32 --ffn-hidden-size 8192 --seq-length 2048
  --max-position-embeddings 2048 --micro-batch-size 2 --global-batch-size 16 --fp16 --recompute-activations
  --tensor-model-parallel-size 2 --pipeline-model-parallel-size 4 --num-layers-per-virtual-pipeline-stage 1)
start=$(date +%s)
err=$(LOOM_MEMORY_AVAILABLE_MB=20000 "$MPIRUN" --oversubscribe -np 8 "$LOOM" train "${COMMON[@]}" "${LOG004[@]}" \
  --train-iters 20 2>&1 >/dev/null)
code=$?
elapsed=$(($(date +%s) - start))
echo "log 004's layout: exit $code after $elapsed s: $err"
[ "$code" -ne 0 ] || fail "log 004's layout was not refused on a 20 GB node"
[ "$(grep -c 'loom: error:' <<<"$err")" -eq 1 ] || fail "log 004: expected one error line, got: $err"
grep -q "(8 ranks; rank" <<<"$err" || fail "log 004: the refusal does not sum the 8 ranks: $err"
# fp16 with Adam is 16 bytes a parameter and its fp32 working copies come on top: 0.9B parameters do not
# fit on 8 ranks of a 20 GB node whatever the recompute (and with DP 1 there is nothing to shard), so the
# line says how many such nodes would.
grep -q "it would fit with the same ranks spread over [0-9]* nodes of this size" <<<"$err" ||
  fail "log 004: what would fit is not named: $err"
# ... and the same layout at an eighth of the width and length fits and runs.
out=$(LOOM_MEMORY_AVAILABLE_MB=20000 "$MPIRUN" --oversubscribe -np 8 "$LOOM" train "${COMMON[@]}" "${LOG004[@]}" \
  --hidden-size 256 --num-attention-heads 8 --ffn-hidden-size 1024 --seq-length 256 --max-position-embeddings 256 \
  --train-iters 1 --log-interval 1 2>&1) || fail "log 004 shrunk does not run: $(tail -3 <<<"$out")"
grep -q " iteration        1/       1 |" <<<"$out" || fail "log 004 shrunk: no iteration line"

exit $status
