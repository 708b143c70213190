# Shared helpers for the CLI tests: run a command, capture output and exit code, assert on them.
set -u
: "${LOOM:?LOOM must point at the loom binary}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILURES=0
SRC=${LOOM_SOURCE_DIR:-}
VOCAB=$SRC/data/gpt2/vocab.json
MERGES=$SRC/data/gpt2/merges.txt

corpus() {  # corpus NAME LINES: the first LINES documents of the bundled Bible as $TMP/NAME_text_document
  : "${LOOM_SOURCE_DIR:?}"
  head -n "$2" "$SRC/data/corpus/kjv.jsonl" > "$TMP/$1.jsonl"
  "$LOOM" preprocess --input "$TMP/$1.jsonl" --output-prefix "$TMP/$1" --vocab-file "$VOCAB" --merge-file "$MERGES" \
    --append-eod --workers 2 >/dev/null
}

run() {  # run CMD...: sets OUT, ERR, CODE
  set +e
  "$@" >"$TMP/out" 2>"$TMP/err"
  CODE=$?
  set -e
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}

fail() {
  echo "FAIL: $*"
  echo "  exit: $CODE"
  echo "  stdout: $(echo "$OUT" | tail -5)"
  echo "  stderr: $ERR"
  FAILURES=$((FAILURES + 1))
}

expect_error() {  # expect_error "expected message" CMD...: one error line, exit 2
  local msg=$1
  shift
  run "$@"
  if [ "$CODE" -ne 2 ]; then fail "expected exit 2 from: $*"; return; fi
  if [ "$(echo "$ERR" | wc -l)" -ne 1 ]; then fail "expected exactly one stderr line from: $*"; return; fi
  case "$ERR" in
    "loom: error: "*"$msg"*) ;;
    *) fail "expected 'loom: error: ...$msg...' from: $*" ;;
  esac
}

expect_line() {  # expect_line "exact line" (in OUT)
  if ! grep -qxF -- "$1" <<<"$OUT"; then fail "expected the line '$1'"; fi
}

finish() {
  if [ "$FAILURES" -ne 0 ]; then
    echo "$FAILURES check(s) failed"
    exit 1
  fi
  echo "all checks passed"
}
