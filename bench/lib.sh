# Shared by the bench scripts that train with `loom`: run from the repository root, BUILD (first
# argument, default build) and LOOM, a temporary directory TMP removed on exit, and the bundled corpus
# preprocessed at $TMP/kjv_text_document.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${1:-build}
LOOM=$BUILD/loom
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$LOOM" preprocess --input data/corpus/kjv.jsonl --output-prefix "$TMP/kjv" --vocab-file data/gpt2/vocab.json \
  --merge-file data/gpt2/merges.txt --append-eod --workers 2 >/dev/null
