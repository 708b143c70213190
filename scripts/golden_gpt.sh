#!/usr/bin/env bash
# Records what GPT training produces, to prove a refactor changes nothing: for seven runs (one process,
# TP2+SP, PP2 interleaved, DP2 ZeRO-2, bf16, fp16 with full recompute, PP2 1F1B with selective recompute)
# the iteration lines (loss, lr, loss scale, grad norm; timings removed) and a SHA-256 of every tensor in
# the saved checkpoint (weights and optimizer state; metadata left out). GOLDEN_SET=bf16: eleven bf16 and
# Llama runs instead (GPT bf16 on 1 and 2 threads, TP2+SP, PP2, DP2 ZeRO-1 and ZeRO-3; Llama bf16, its TP2,
# PP2 interleaved and full recompute, Llama fp32).
#   scripts/golden_gpt.sh BUILD OUT      then compare two OUT files with diff (bitwise: no line may differ).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:?usage: golden_gpt.sh BUILD OUT}
OUT=${2:?usage: golden_gpt.sh BUILD OUT}
LOOM=$BUILD/loom
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom_golden.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
head -n 60 data/corpus/kjv.jsonl > "$TMP/small.jsonl"
"$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/small" --vocab-file data/gpt2/vocab.json \
  --merge-file data/gpt2/merges.txt --append-eod --workers 1 >/dev/null
common=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --max-position-embeddings 64
        --micro-batch-size 2 --global-batch-size 8 --train-iters 12 --lr 1e-3 --min-lr 1e-4 --lr-decay-style cosine
        --lr-warmup-iters 2 --data-path "$TMP/small_text_document" --vocab-file data/gpt2/vocab.json
        --merge-file data/gpt2/merges.txt --log-interval 1 --eval-interval 1000 --eval-iters 0 --seed 7)
: > "$OUT"
run() {  # run NAME NP FLAGS...
  local name=$1 np=$2
  shift 2
  rm -rf "$TMP/ckpt"
  if [ "$np" -eq 1 ]; then "$LOOM" train "${common[@]}" --save "$TMP/ckpt" "$@" > "$TMP/log"
  else mpirun --oversubscribe -np "$np" "$LOOM" train "${common[@]}" --save "$TMP/ckpt" "$@" > "$TMP/log"; fi
  echo "== $name" >> "$OUT"
  grep ' iteration ' "$TMP/log" | grep -v checkpoint | sed -E 's/^ \[[^]]*\]//; s/elapsed time per iteration \(ms\): [0-9.]+ \|//;
    s/throughput per GPU \(TFLOP\/s\/GPU\): [0-9.]+ \|//; s/tokens per second per GPU: [0-9.]+ \|//' >> "$OUT"
  /usr/bin/python3 - "$TMP/ckpt" >> "$OUT" <<'PY'
import hashlib, json, os, struct, sys
root = sys.argv[1]
it = open(os.path.join(root, "latest_checkpointed_iteration.txt")).read().strip()
d = os.path.join(root, "iter_%07d" % int(it))
for f in sorted(os.listdir(d)):
    if not f.endswith(".safetensors"):
        continue
    raw = open(os.path.join(d, f), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    for name in sorted(k for k in header if k != "__metadata__"):
        a, b = header[name]["data_offsets"]
        print(f, name, hashlib.sha256(raw[8 + n + a:8 + n + b]).hexdigest()[:16])
PY
}
if [ "${GOLDEN_SET:-gpt}" = bf16 ]; then
  llama=(--normalization RMSNorm --swiglu --position-embedding-type rope --group-query-attention --num-query-groups 2
         --disable-bias-linear --untie-embeddings-and-output-weights)
  run bf16-one-process 1 --bf16
  OMP_NUM_THREADS=2 run bf16-two-threads 1 --bf16
  run bf16-tp2-sp 2 --bf16 --tensor-model-parallel-size 2 --sequence-parallel
  run bf16-pp2 2 --bf16 --pipeline-model-parallel-size 2
  run bf16-dp2-zero1 2 --bf16 --zero-stage 1
  run bf16-dp2-zero3 2 --bf16 --zero-stage 3
  run llama-bf16 1 --bf16 "${llama[@]}"
  run llama-bf16-tp2 2 --bf16 --tensor-model-parallel-size 2 "${llama[@]}"
  run llama-bf16-pp2-interleaved 2 --bf16 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1 "${llama[@]}"
  run llama-bf16-full-recompute 1 --bf16 --recompute-granularity full "${llama[@]}"
  run llama-fp32 1 "${llama[@]}"
  echo "$(grep -c '' "$OUT") lines written to $OUT"
  exit 0
fi
run one-process 1
run tp2-sp 2 --tensor-model-parallel-size 2 --sequence-parallel
run pp2-interleaved 2 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1
run dp2-zero2 2 --zero-stage 2
run bf16 1 --bf16
run fp16-full-recompute 1 --fp16 --recompute-granularity full
run pp2-1f1b-selective 2 --pipeline-model-parallel-size 2 --recompute-granularity selective --hidden-dropout 0.2
echo "$(grep -c '' "$OUT") lines written to $OUT"
