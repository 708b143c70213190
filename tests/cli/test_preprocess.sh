#!/usr/bin/env bash
# `loom preprocess` end to end, and the data readers' handling of bad files:
#  - --help; a small JSONL (multi-key, empty documents, no final newline) and its outputs;
#  - every bad input gives exactly one `loom: error:` line on stderr, exit code 2, and leaves no
#    output or temporary file behind: malformed JSON on line N, empty line, invalid UTF-8, missing key,
#    non-string value, missing input, vocab/merges that do not belong together, bad flags;
#  - --skip-bad-lines counts and reports the skipped lines;
#  - truncated / foreign / missing .idx and .bin, and a nonexistent --data-path, through the reader
#    the trainer uses (tests/data_probe), with the same one-line error convention.
set -uo pipefail
LOOM=${LOOM:-${LOOM_BUILD_DIR:-build}/loom}
PROBE=${LOOM_BUILD_DIR:-$(dirname "$LOOM")}/tests/data_probe
SRC=${LOOM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
VOCAB=$SRC/data/gpt2/vocab.json
MERGES=$SRC/data/gpt2/merges.txt
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok    $1"; }
bad() { echo "FAIL  $1"; fails=$((fails + 1)); }

for exe in "$LOOM" "$PROBE"; do
  [ -x "$exe" ] || { echo "FAIL  $exe is not built"; exit 1; }
done

pp() { "$LOOM" preprocess --vocab-file "$VOCAB" --merge-file "$MERGES" "$@"; }

# expect_error NAME EXPECTED_SUBSTRING DIR_THAT_MUST_STAY_CLEAN -- command...
expect_error() {
  local name=$1 want=$2 dir=$3
  shift 4
  "$@" >"$T/out" 2>"$T/err"
  local rc=$? lines
  lines=$(wc -l <"$T/err")
  if [ $rc -ne 2 ]; then bad "$name: exit code $rc, expected 2 ($(head -c 300 "$T/err"))"; return; fi
  if [ "$lines" -ne 1 ] || ! grep -q '^loom: error: ' "$T/err"; then bad "$name: stderr is not one 'loom: error:' line: $(cat "$T/err")"; return; fi
  if ! grep -qF -- "$want" "$T/err"; then bad "$name: message lacks '$want': $(cat "$T/err")"; return; fi
  if [ -n "$dir" ] && [ -n "$(ls -A "$dir")" ]; then bad "$name: left files behind: $(ls "$dir")"; return; fi
  ok "$name: $(cut -c1-150 "$T/err")"
}

idx_field() {  # idx_field FILE OFFSET -> u64 at that offset
  od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '
}

# ---- help
if "$LOOM" preprocess --help >"$T/help" 2>&1 && grep -q -- '--skip-bad-lines' "$T/help" && grep -q '^examples:' "$T/help"; then
  ok "--help lists the flags and examples"
else
  bad "--help"
fi

# ---- a small valid input: two keys, an empty text, no newline at the end
printf '%s\n' '{"text": "Hello world", "title": "One"}' '{"text": "", "title": "Two"}' \
  '{"text": "caf\u00e9 \ud83d\ude00", "title": "", "n": 3}' >"$T/in.jsonl"
printf '%s' '{"text": "last line", "title": "Four"}' >>"$T/in.jsonl"
mkdir "$T/ok"
if pp --input "$T/in.jsonl" --output-prefix "$T/ok/x" --json-keys text title --append-eod --workers 2 >"$T/out" 2>"$T/err"; then
  n_text=$(idx_field "$T/ok/x_text_document.idx" 18)
  n_title=$(idx_field "$T/ok/x_title_document.idx" 18)
  if [ "$n_text" = 3 ] && [ "$n_title" = 3 ] && [ "$(ls "$T/ok" | wc -l)" = 4 ] &&
    grep -q "left out 1 empty document of key 'text'" "$T/out"; then
    ok "valid input: 3 documents per key (empty ones left out), 4 files, summary says so"
  else
    bad "valid input: got $n_text/$n_title documents, files: $(ls "$T/ok"); $(cat "$T/out")"
  fi
else
  bad "valid input failed: $(cat "$T/err")"
fi
# Writing over existing outputs works (renamed into place).
if pp --input "$T/in.jsonl" --output-prefix "$T/ok/x" --json-keys text title >/dev/null 2>&1 &&
  [ "$(ls "$T/ok" | wc -l)" = 4 ]; then ok "rerun replaces the outputs"; else bad "rerun"; fi

# ---- bad lines
mkdir "$T/o"
printf '%s\n' '{"text": "fine"}' '{"text": "fine too"}' '{"text": "broken' '{"text": "after"}' >"$T/malformed.jsonl"
expect_error "malformed JSON" "$T/malformed.jsonl:3: malformed JSON (" "$T/o" -- pp --input "$T/malformed.jsonl" --output-prefix "$T/o/x"
expect_error "malformed JSON, 2 workers" "$T/malformed.jsonl:3: malformed JSON (" "$T/o" -- pp --input "$T/malformed.jsonl" --output-prefix "$T/o/x" --workers 2
printf '%s\n' '{"text": "a"}' '' '{"text": "b"}' >"$T/blank.jsonl"
expect_error "empty line" "$T/blank.jsonl:2: malformed JSON (empty line)" "$T/o" -- pp --input "$T/blank.jsonl" --output-prefix "$T/o/x"
printf '{"text": "a"}\n{"text": "caf\xe9"}\n' >"$T/latin1.jsonl"
expect_error "invalid UTF-8" "$T/latin1.jsonl:2: malformed JSON (" "$T/o" -- pp --input "$T/latin1.jsonl" --output-prefix "$T/o/x"
printf '%s\n' '{"text": "a"}' '{"body": "b"}' >"$T/nokey.jsonl"
expect_error "missing key" "$T/nokey.jsonl:2: missing key 'text'" "$T/o" -- pp --input "$T/nokey.jsonl" --output-prefix "$T/o/x"
printf '%s\n' '{"text": 12}' >"$T/number.jsonl"
expect_error "non-string value" "$T/number.jsonl:1: key 'text' is not a string (found number)" "$T/o" -- pp --input "$T/number.jsonl" --output-prefix "$T/o/x"
printf '%s\n' '["text"]' >"$T/array.jsonl"
expect_error "not an object" "$T/array.jsonl:1: malformed JSON (expected an object, found array)" "$T/o" -- pp --input "$T/array.jsonl" --output-prefix "$T/o/x"

# Many lines so the bad one sits in a later batch than the first; workers 2.
{
  for i in $(seq 1 30000); do echo '{"text": "The quick brown fox jumps over the lazy dog again and again."}'; done
  echo '{"text": oops}'
  for i in $(seq 1 100); do echo '{"text": "more"}'; done
} >"$T/big.jsonl"
expect_error "malformed JSON deep in a large file" "$T/big.jsonl:30001: malformed JSON (" "$T/o" -- pp --input "$T/big.jsonl" --output-prefix "$T/o/x" --workers 2

# ---- --skip-bad-lines
cat "$T/malformed.jsonl" "$T/nokey.jsonl" "$T/blank.jsonl" >"$T/mixed.jsonl"
mkdir "$T/s"
if pp --input "$T/mixed.jsonl" --output-prefix "$T/s/x" --skip-bad-lines --workers 2 >"$T/out" 2>"$T/err"; then
  n=$(idx_field "$T/s/x_text_document.idx" 18)
  if [ "$n" = 6 ] && grep -q 'Skipped 3 bad lines' "$T/out" && grep -qF "$T/mixed.jsonl:3: malformed JSON" "$T/out" &&
    grep -qF "$T/mixed.jsonl:6: missing key 'text'" "$T/out" && grep -qF "$T/mixed.jsonl:8: malformed JSON (empty line)" "$T/out"; then
    ok "--skip-bad-lines: 6 documents written, 3 bad lines reported with file:line"
  else
    bad "--skip-bad-lines: $n documents; $(cat "$T/out")"
  fi
else
  bad "--skip-bad-lines failed: $(cat "$T/err")"
fi

# ---- other user errors
expect_error "missing input file" "cannot open input '$T/nope.jsonl'" "$T/o" -- pp --input "$T/nope.jsonl" --output-prefix "$T/o/x"
expect_error "required flags" "the following arguments are required: --input --output-prefix" "$T/o" -- pp
expect_error "output directory missing" "cannot create '$T/missing/x_text_document.bin'" "$T/o" -- pp --input "$T/in.jsonl" --output-prefix "$T/missing/x"
expect_error "--workers 0" "--workers must be between 1 and 1024" "$T/o" -- pp --input "$T/in.jsonl" --output-prefix "$T/o/x" --workers 0
expect_error "duplicate key" "--json-keys lists 'text' twice" "$T/o" -- pp --input "$T/in.jsonl" --output-prefix "$T/o/x" --json-keys text text
expect_error "unknown tokenizer" "invalid choice: 'Llama'" "$T/o" -- pp --input "$T/in.jsonl" --output-prefix "$T/o/x" --tokenizer-type Llama
expect_error "vocab file missing" "cannot open vocab file '$T/none.json'" "$T/o" -- "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/o/x" --vocab-file "$T/none.json" --merge-file "$MERGES"
expect_error "vocab and merges swapped" "malformed JSON" "$T/o" -- "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/o/x" --vocab-file "$MERGES" --merge-file "$VOCAB"
{ head -n 1000 "$MERGES"; echo "Ġfoo Ġbarbazqux"; tail -n +1001 "$MERGES"; } >"$T/merges_bad.txt"
expect_error "merge not in vocab" "line 1001: merge 'Ġfoo Ġbarbazqux' uses or makes a token that is not in" "$T/o" -- "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/o/x" --vocab-file "$VOCAB" --merge-file "$T/merges_bad.txt"
printf '{"a": 0, "b": 1}' >"$T/tiny_vocab.json"
expect_error "vocab without all bytes" "no entry for byte 0" "$T/o" -- "$LOOM" preprocess --input "$T/in.jsonl" --output-prefix "$T/o/x" --vocab-file "$T/tiny_vocab.json" --merge-file "$MERGES"

# ---- reading: truncated / foreign / missing files (the reader behind --data-path)
mkdir "$T/r"
pp --input "$SRC/data/corpus/kjv.jsonl" --output-prefix "$T/r/kjv" --append-eod >/dev/null 2>&1 || bad "preprocess corpus"
P=$T/r/kjv_text_document
if "$PROBE" read-indexed "$P" "$T/read.json" >/dev/null 2>"$T/err"; then ok "reader opens the corpus output"; else bad "reader: $(cat "$T/err")"; fi
cp "$P.bin" "$T/r/t.bin"
head -c 1000 "$P.idx" >"$T/r/t.idx"
expect_error "truncated .idx" "index file '$T/r/t.idx' is truncated" "" -- "$PROBE" read-indexed "$T/r/t" "$T/x.json"
head -c 20 "$P.idx" >"$T/r/t.idx"
expect_error "truncated .idx header" "index file '$T/r/t.idx' is truncated" "" -- "$PROBE" read-indexed "$T/r/t" "$T/x.json"
cp "$P.idx" "$T/r/t.idx"
head -c 100000 "$P.bin" >"$T/r/t.bin"
expect_error "truncated .bin" "data file '$T/r/t.bin' is truncated" "" -- "$PROBE" read-indexed "$T/r/t" "$T/x.json"
head -c 100001 "$P.bin" >"$T/r/t.bin"
expect_error "odd-sized .bin" "data file '$T/r/t.bin' is 100001 bytes" "" -- "$PROBE" read-indexed "$T/r/t" "$T/x.json"
cp "$VOCAB" "$T/r/f.idx"
cp "$P.bin" "$T/r/f.bin"
expect_error "foreign .idx" "index file '$T/r/f.idx' is not a Megatron mmap index" "" -- "$PROBE" read-indexed "$T/r/f" "$T/x.json"
{ head -c 9 "$P.idx"; printf '\x02\x00\x00\x00\x00\x00\x00\x00'; tail -c +18 "$P.idx"; } >"$T/r/f.idx"
expect_error "unsupported version" "has version 2" "" -- "$PROBE" read-indexed "$T/r/f" "$T/x.json"
{ cat "$P.idx"; printf 'junk'; } >"$T/r/f.idx"
expect_error "trailing bytes" "has 4 bytes after its document index" "" -- "$PROBE" read-indexed "$T/r/f" "$T/x.json"
cp "$P.idx" "$T/r/m.idx"
expect_error "missing .bin" "$T/r/m.bin is missing" "" -- "$PROBE" read-indexed "$T/r/m" "$T/x.json"
printf '{"data_path": ["%s"], "train_samples": 10, "seq_length": 16}' "$T/r/nothing" >"$T/cfg.json"
expect_error "nonexistent data path" "dataset '$T/r/nothing' does not exist" "" -- "$PROBE" gpt-build "$T/cfg.json" "$T/x.json"
printf '{"data_path": ["0.5", "%s", "0.5"], "train_samples": 10, "seq_length": 16}' "$P" >"$T/cfg.json"
expect_error "odd --data-path list" "expected one path or weight/path pairs" "" -- "$PROBE" gpt-build "$T/cfg.json" "$T/x.json"
printf '{"data_path": ["%s"], "train_samples": 10, "seq_length": 16, "split": "a,b"}' "$P" >"$T/cfg.json"
expect_error "bad --split" "could not convert string to float: 'a'" "" -- "$PROBE" gpt-build "$T/cfg.json" "$T/x.json"
printf '%s\n' '{"text": "a"}' '{"text": "b"}' >"$T/two.jsonl"
pp --input "$T/two.jsonl" --output-prefix "$T/r/two" >/dev/null 2>&1
printf '{"data_path": ["%s"], "train_samples": 10, "seq_length": 16, "split": "1,1,0", "cache_dir": "%s"}' "$T/r/two_text_document" "$T/c" >"$T/cfg.json"
expect_error "split without enough tokens" "has 1 token; samples need at least 2" "" -- "$PROBE" gpt-build "$T/cfg.json" "$T/x.json"

leftovers=$(find "$T" -name '*.tmp-*' | wc -l)
if [ "$leftovers" = 0 ]; then ok "no temporary files anywhere"; else bad "temporary files left: $(find "$T" -name '*.tmp-*')"; fi

if [ $fails -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
