# Shared by the scripts that run `loom train` under mpirun: environment, a temp dir, `fail`, and a small
# preprocessed corpus at $TMP/small_text_document ($VOCAB, $MERGES for the tokenizer flags).
set -u
: "${MPIRUN:?}" "${LOOM:?}" "${LOOM_SOURCE_DIR:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
SRC=$LOOM_SOURCE_DIR
VOCAB=$SRC/data/gpt2/vocab.json
MERGES=$SRC/data/gpt2/merges.txt
head -n 40 "$SRC/data/corpus/kjv.jsonl" > "$TMP/small.jsonl"
"$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/small" --vocab-file "$VOCAB" \
  --merge-file "$MERGES" --append-eod --workers 1 >/dev/null || fail "preprocess"
