# Outputs are checked before the work starts (one line, exit 2, nothing trained), failed saves and
# interrupted writes leave no temporary files, and the leftovers of killed runs are cleared at the next
# start. The read-only and disk-full cases use small tmpfs mounts (root in CI); without mount(8) rights
# they are skipped with a note.
set -e
source "$(dirname "$0")/lib.sh"
corpus small 40
ARGS=(--num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 4
      --lr 3e-3 --train-iters 4 --log-interval 1 --eval-iters 0 --split 100,0,0
      --data-path "$TMP/small_text_document" --vocab-file "$VOCAB" --merge-file "$MERGES")
MOUNTS=()
cleanup_mounts() { for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup_mounts EXIT
tmpfs() {  # tmpfs DIR OPTIONS: mounts a small tmpfs, or returns 1
  mkdir -p "$1"
  mount -t tmpfs -o "$2" tmpfs "$1" 2>/dev/null || return 1
  MOUNTS+=("$1")
}
trained() { grep -q "iteration  *1/" "$TMP/out"; }

# --save: a path under a regular file, a regular file, a read-only filesystem.
expect_error "--save /etc/passwd/ck: /etc/passwd is not a directory" "$LOOM" train "${ARGS[@]}" --save /etc/passwd/ck
if trained; then fail "trained before refusing --save /etc/passwd/ck"; fi
echo notes > "$TMP/notes.txt"
expect_error "--save $TMP/notes.txt: $TMP/notes.txt exists and is not a directory" \
  "$LOOM" train "${ARGS[@]}" --save "$TMP/notes.txt"
expect_error "--save /proc/loom-ck: cannot write in /proc: " "$LOOM" train "${ARGS[@]}" --save /proc/loom-ck
if tmpfs "$TMP/ro" ro,size=1m; then
  expect_error "--save $TMP/ro/ck: cannot write in $TMP/ro: Read-only file system" \
    "$LOOM" train "${ARGS[@]}" --save "$TMP/ro/ck"
else
  echo "note: no tmpfs mount here, read-only --save case skipped"
fi
# --profile-layers-output, --pipeline-trace (files), --offload-path (a directory).
mkdir -p "$TMP/adir"
expect_error "--profile-layers-output $TMP/adir: $TMP/adir is a directory, expected a file name" \
  "$LOOM" train "${ARGS[@]}" --profile-layers --profile-layers-output "$TMP/adir"
expect_error "--profile-layers-output $TMP/missing/costs.json: directory $TMP/missing does not exist" \
  "$LOOM" train "${ARGS[@]}" --profile-layers --profile-layers-output "$TMP/missing/costs.json"
expect_error "--profile-layers-output $TMP/notes.txt/costs.json: $TMP/notes.txt is not a directory" \
  "$LOOM" train "${ARGS[@]}" --profile-layers --profile-layers-output "$TMP/notes.txt/costs.json"
expect_error "--pipeline-trace needs a pipeline (--pipeline-model-parallel-size 2 or more)" \
  "$LOOM" train "${ARGS[@]}" --pipeline-trace "$TMP/trace.json"
expect_error "--offload-path $TMP/notes.txt: $TMP/notes.txt exists and is not a directory" \
  "$LOOM" train "${ARGS[@]}" --offload-optimizer nvme --offload-path "$TMP/notes.txt"
# A good --save directory that does not exist yet is fine (made when saving), and nothing was probed into it.
run "$LOOM" train "${ARGS[@]}" --save "$TMP/new/ck"
[ "$CODE" -eq 0 ] || fail "a new --save directory"
[ "$(cat "$TMP/new/ck/latest_checkpointed_iteration.txt" 2>/dev/null)" = 4 ] || fail "no checkpoint in the new directory"
if ls -a "$TMP/new" "$TMP/new/ck" | grep -q loom-write-probe; then fail "the write probe was left behind"; fi

# convert: the output's kind is checked before the checkpoint is read.
expect_error "--output $TMP/adir: $TMP/adir is a directory, expected a file name" \
  "$LOOM" convert --load "$TMP/new/ck" --to safetensors --output "$TMP/adir"
expect_error "--output $TMP/notes.txt: $TMP/notes.txt exists and is not a directory" \
  "$LOOM" convert --load "$TMP/new/ck" --to hf --output "$TMP/notes.txt"
expect_error "--output /etc/passwd/m.safetensors: /etc/passwd is not a directory" \
  "$LOOM" convert --load "$TMP/new/ck" --to safetensors --output /etc/passwd/m.safetensors

# Stale leftovers of killed saves are removed at the next start; other names are not touched.
mkdir -p "$TMP/new/ck/iter_0000002.tmp" "$TMP/new/ck/iter_mine.tmp"
echo partial > "$TMP/new/ck/iter_0000002.tmp/shard_tp00_pp000.safetensors"
echo 9 > "$TMP/new/ck/latest_checkpointed_iteration.txt.tmp.999999999"
echo keep > "$TMP/new/ck/latest_checkpointed_iteration.txt.tmp.bak"
run "$LOOM" train "${ARGS[@]}" --train-iters 6 --load "$TMP/new/ck" --save "$TMP/new/ck"
[ "$CODE" -eq 0 ] || fail "resume beside stale leftovers"
[ -e "$TMP/new/ck/iter_0000002.tmp" ] && fail "a stale iter_0000002.tmp was kept"
[ -e "$TMP/new/ck/latest_checkpointed_iteration.txt.tmp.999999999" ] && fail "a stale latest...tmp.<pid> was kept"
[ -d "$TMP/new/ck/iter_mine.tmp" ] || fail "iter_mine.tmp (not Loom's pattern) was removed"
[ -f "$TMP/new/ck/latest_checkpointed_iteration.txt.tmp.bak" ] || fail "a .tmp.bak file (not Loom's pattern) was removed"

# Disk full during a save: one error line, and it is the last line (no MPI_ABORT banner after it);
# the partial iteration directory is gone.
if tmpfs "$TMP/full" size=1m; then
  run "$LOOM" train "${ARGS[@]}" --save "$TMP/full/ck"
  [ "$CODE" -eq 1 ] || fail "disk full: exit $CODE"
  [ "$(echo "$ERR" | wc -l)" -eq 1 ] || fail "disk full: expected one stderr line"
  case "$(echo "$ERR" | tail -1)" in
    "loom: error: rank 0: saving checkpoint: "*"No space left on device") ;;
    *) fail "disk full: the last line is not the error" ;;
  esac
  if ls "$TMP/full/ck" | grep -q tmp; then fail "disk full left $(ls "$TMP/full/ck")"; fi
else
  echo "note: no tmpfs mount here, disk-full case skipped"
fi

# preprocess: an output name that is a directory is refused before tokenising; SIGTERM leaves no
# temporary file; a killed run's temporary file is removed at the next start.
mkdir -p "$TMP/pp/out_text_document.bin"
expect_error "cannot create '$TMP/pp/out_text_document.bin': it is a directory" \
  "$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/pp/out" --vocab-file "$VOCAB" --merge-file "$MERGES"
expect_error "cannot create '$TMP/nodir/out_text_document.bin'" \
  "$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/nodir/out" --vocab-file "$VOCAB" --merge-file "$MERGES"
for _ in $(seq 20); do cat "$SRC/data/corpus/kjv.jsonl"; done > "$TMP/big.jsonl"
"$LOOM" preprocess --input "$TMP/big.jsonl" --output-prefix "$TMP/pp/big" --vocab-file "$VOCAB" --merge-file "$MERGES" \
  --workers 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do ls "$TMP/pp" | grep -q "big_text_document.bin.tmp-" && break; sleep 0.1; done
ls "$TMP/pp" | grep -q "big_text_document.bin.tmp-" || fail "preprocess did not start writing"
sleep 0.5
kill -TERM $pid
set +e; wait $pid; code=$?; set -e
[ "$code" -eq 143 ] || fail "preprocess after SIGTERM: exit $code (expected 143, killed by the signal)"
if ls "$TMP/pp" | grep -q "tmp"; then fail "SIGTERM left $(ls "$TMP/pp" | grep tmp)"; fi
echo partial > "$TMP/pp/small_text_document.bin.tmp-999999999-0"
echo keep > "$TMP/pp/small_text_document.bin.tmp-notes"
run "$LOOM" preprocess --input "$TMP/small.jsonl" --output-prefix "$TMP/pp/small" --vocab-file "$VOCAB" --merge-file "$MERGES"
[ "$CODE" -eq 0 ] || fail "preprocess beside a stale temporary file"
[ -e "$TMP/pp/small_text_document.bin.tmp-999999999-0" ] && fail "a stale preprocess temporary file was kept"
[ -f "$TMP/pp/small_text_document.bin.tmp-notes" ] || fail "a file outside Loom's pattern was removed"

finish
