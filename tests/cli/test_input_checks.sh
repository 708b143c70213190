# Inputs that used to be accepted and did harm (issue 17): token ids outside the tokenizer's vocabulary,
# a .bin that belongs to another .idx, a checkpoint of another architecture, `loom convert` writing over
# existing files; each is one `loom: error:` line, exit 2, before any work. Plus two messages that named
# the wrong problem (--global-batch-size 0, --merge-file DIR).
set -e
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
corpus small 40
corpus more 80
MODEL=(--num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2
       --global-batch-size 4 --lr 1e-3 --log-interval 1 --eval-interval 100 --eval-iters 0 --split 90,5,5)
ARGS=("${MODEL[@]}" --vocab-file "$VOCAB" --merge-file "$MERGES")

# The sequence of dataset PREFIX whose tokens cover byte offset AT of the .bin (from the .idx).
sequence_at() {
  "$PY" - "$1.idx" "$2" <<'EOF'
import sys, numpy as np
d = open(sys.argv[1], "rb").read()
n = int(np.frombuffer(d[18:26], np.uint64)[0])
sizes = np.frombuffer(d[34:34 + 4 * n], np.int32)
ptrs = np.frombuffer(d[34 + 4 * n:34 + 12 * n], np.int64)
at = int(sys.argv[2])
print(next(i for i in range(n) if ptrs[i] <= at < ptrs[i] + 2 * sizes[i]))
EOF
}

# 1. Token ids outside the vocabulary: five bytes of 0xff (id 65535) in a valid .bin ...
cp "$TMP/small_text_document.idx" "$TMP/ff_text_document.idx"
cp "$TMP/small_text_document.bin" "$TMP/ff_text_document.bin"
printf '\xff\xff\xff\xff\xff' | dd of="$TMP/ff_text_document.bin" bs=1 seek=3000 conv=notrunc 2>/dev/null
seq=$(sequence_at "$TMP/ff_text_document" 3000)
expect_error "data file '$TMP/ff_text_document.bin': sequence $seq holds token id 65535 (position " \
  "$LOOM" train "${ARGS[@]}" --train-iters 2 --data-path "$TMP/ff_text_document"
case "$ERR" in *"outside the tokenizer's vocabulary of 50257 ids"*) ;; *) fail "the vocabulary size is not named" ;; esac
# ... and a valid 301-token GPT-2 style vocabulary (the 256 bytes, 44 merges, <|endoftext|>) with GPT-2 data.
"$PY" - "$VOCAB" "$MERGES" "$TMP/v301.json" "$TMP/m301.txt" <<'EOF'
import json, sys
vocab = json.load(open(sys.argv[1], encoding="utf-8"))
small = {t: i for t, i in vocab.items() if i < 300}
small["<|endoftext|>"] = 300
json.dump(small, open(sys.argv[3], "w", encoding="utf-8"), ensure_ascii=False)
lines = open(sys.argv[2], encoding="utf-8").read().split("\n")
open(sys.argv[4], "w", encoding="utf-8").write("\n".join(lines[:45]) + "\n")
EOF
expect_error "data file '$TMP/small_text_document.bin': sequence 0 holds token id " \
  "$LOOM" train "${MODEL[@]}" --vocab-file "$TMP/v301.json" --merge-file "$TMP/m301.txt" --train-iters 2 \
  --data-path "$TMP/small_text_document"
case "$ERR" in *"outside the tokenizer's vocabulary of 301 ids"*) ;; *) fail "the 301-token vocabulary is not named" ;; esac
# The same small vocabulary with data made by it trains.
"$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/v301" --vocab-file "$TMP/v301.json" \
  --merge-file "$TMP/m301.txt" --append-eod --workers 1 > /dev/null
run "$LOOM" train "${MODEL[@]}" --vocab-file "$TMP/v301.json" --merge-file "$TMP/m301.txt" --train-iters 2 \
  --data-path "$TMP/v301_text_document"
[ "$CODE" -eq 0 ] || fail "data made with the 301-token vocabulary should train"

# 2. An .idx with the .bin of a larger dataset.
cp "$TMP/small_text_document.idx" "$TMP/mixed_text_document.idx"
cp "$TMP/more_text_document.bin" "$TMP/mixed_text_document.bin"
idx_bytes=$(stat -c %s "$TMP/small_text_document.bin")
bin_bytes=$(stat -c %s "$TMP/more_text_document.bin")
expect_error "data file '$TMP/mixed_text_document.bin' has $bin_bytes bytes but '$TMP/mixed_text_document.idx' describes $idx_bytes bytes: the two files belong to different datasets" \
  "$LOOM" train "${ARGS[@]}" --train-iters 2 --data-path "$TMP/mixed_text_document"

# 3. A checkpoint of another architecture is refused by the field that differs, before any work.
run "$LOOM" train "${ARGS[@]}" --train-iters 2 --data-path "$TMP/small_text_document" --save "$TMP/ck"
[ "$CODE" -eq 0 ] || fail "training the checkpoint"
expect_error "checkpoint $TMP/ck was trained with --num-attention-heads 4, this run has 8" \
  "$LOOM" train "${ARGS[@]}" --num-attention-heads 8 --train-iters 4 --data-path "$TMP/small_text_document" --load "$TMP/ck"
expect_error "checkpoint $TMP/ck was trained with --normalization LayerNorm, this run has RMSNorm" \
  "$LOOM" train "${ARGS[@]}" --normalization RMSNorm --train-iters 4 --data-path "$TMP/small_text_document" --load "$TMP/ck"
expect_error "checkpoint $TMP/ck was trained with --untie-embeddings-and-output-weights 0, this run has 1" \
  "$LOOM" train "${ARGS[@]}" --untie-embeddings-and-output-weights --train-iters 4 --data-path "$TMP/small_text_document" --load "$TMP/ck"
expect_error "checkpoint $TMP/ck was trained with --ffn-hidden-size 128, this run has 64" \
  "$LOOM" train "${ARGS[@]}" --ffn-hidden-size 64 --train-iters 4 --data-path "$TMP/small_text_document" --load "$TMP/ck"
# A checkpoint written before a field was recorded: what it records is compared, the rest is not.
cp -r "$TMP/ck" "$TMP/ck_full"
"$PY" - "$TMP/ck/iter_0000002/metadata.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
for k in ("num_attention_heads", "num_query_groups", "kv_channels", "ffn_hidden_size"):
    del m["args"][k]
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF
run "$LOOM" train "${ARGS[@]}" --train-iters 4 --data-path "$TMP/small_text_document" --load "$TMP/ck"
[ "$CODE" -eq 0 ] || fail "a checkpoint without the newer fields should load into its own model"
expect_error "checkpoint $TMP/ck was trained with --normalization LayerNorm, this run has RMSNorm" \
  "$LOOM" train "${ARGS[@]}" --normalization RMSNorm --train-iters 4 --data-path "$TMP/small_text_document" --load "$TMP/ck"

# 10. loom convert never writes over what exists unless --overwrite.
mkdir -p "$TMP/hf"
echo '{"mine": true}' > "$TMP/hf/config.json"
expect_error "--output $TMP/hf is a directory that is not empty; add --overwrite" \
  "$LOOM" convert --load "$TMP/ck_full" --to hf --output "$TMP/hf"
grep -q mine "$TMP/hf/config.json" || fail "the refused export changed config.json"
echo "my notes" > "$TMP/notes.txt"
expect_error "--output $TMP/notes.txt already exists; add --overwrite to replace it" \
  "$LOOM" convert --load "$TMP/ck_full" --to safetensors --output "$TMP/notes.txt"
[ "$(cat "$TMP/notes.txt")" = "my notes" ] || fail "the refused export changed notes.txt"
expect_error "--output $TMP/notes.txt: $TMP/notes.txt exists and is not a directory" \
  "$LOOM" convert --load "$TMP/ck_full" --to hf --output "$TMP/notes.txt" --overwrite
expect_error "--output $TMP/hf: $TMP/hf is a directory, expected a file name" \
  "$LOOM" convert --load "$TMP/ck_full" --to safetensors --output "$TMP/hf" --overwrite
run "$LOOM" convert --load "$TMP/ck_full" --to hf --output "$TMP/hf" --overwrite
[ "$CODE" -eq 0 ] && ! grep -q mine "$TMP/hf/config.json" || fail "--overwrite should write the export"
run "$LOOM" convert --load "$TMP/ck_full" --to safetensors --output "$TMP/notes.txt" --overwrite
[ "$CODE" -eq 0 ] && [ "$(head -c 8 "$TMP/notes.txt" | wc -c)" -eq 8 ] && ! grep -q "my notes" "$TMP/notes.txt" \
  || fail "--overwrite should replace the file"
mkdir -p "$TMP/empty"
run "$LOOM" convert --load "$TMP/ck_full" --to hf --output "$TMP/empty"
[ "$CODE" -eq 0 ] && [ -f "$TMP/empty/config.json" ] || fail "an empty directory is a fine --output"

# Messages that named the wrong problem.
expect_error "--global-batch-size must be positive" \
  "$LOOM" train "${ARGS[@]}" --global-batch-size 0 --train-iters 2 --data-path "$TMP/small_text_document"
expect_error "merge file '$TMP' is a directory, not a file" \
  "$LOOM" train "${MODEL[@]}" --vocab-file "$VOCAB" --merge-file "$TMP" --train-iters 2 --data-path "$TMP/small_text_document"
finish
