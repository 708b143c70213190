#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of fuzz/ (ASan + UBSan, clang++-14).
#
#   scripts/fuzz.sh --smoke [TARGET...]   CI: build, replay fuzz/regressions/, fuzz each target for a few seconds
#   scripts/fuzz.sh --long  [TARGET...]   replay, then 1,000,000 inputs per target (-runs=1000000), one
#                                         target at a time, and a table of execs, time, cov and ft per target
#
# Options: --build DIR (default build-fuzz), --seconds S (smoke: per target, default 8), --runs N (long,
# default 1000000), --max-seconds S (long: stop a target after S seconds even before N inputs; default
# none), --jobs N (build parallelism, default 2), --no-build (use the targets already built, e.g. to run
# two long runs side by side). TARGET is e.g. fuzz_safetensors (default: all).
# Each target's corpus grows in DIR/corpus/<target> (seeded from fuzz/corpus/<target> and, for the
# SentencePiece target, a model trained at run time); a crash, leak, timeout or over-limit allocation is
# saved as DIR/artifacts/<target>/crash-* (keep it under fuzz/regressions/<target>/ once fixed) and makes
# the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="" build=build-fuzz seconds=8 runs=1000000 max_seconds=0 jobs=2 do_build=1 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke|--long) mode="${1#--}" ;;
    --build) build="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --max-seconds) max_seconds="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    --no-build) do_build=0 ;;
    fuzz_*) targets+=("$1") ;;
    *) echo "usage: scripts/fuzz.sh --smoke|--long [--build DIR] [--seconds S] [--runs N] [--max-seconds S] [--jobs N] [--no-build] [fuzz_TARGET...]" >&2
       exit 2 ;;
  esac
  shift
done
[ -n "$mode" ] || { echo "scripts/fuzz.sh: give --smoke or --long" >&2; exit 2; }
command -v clang++-14 >/dev/null || { echo "scripts/fuzz.sh: clang++-14 is missing (scripts/install-deps.sh installs it)" >&2; exit 2; }

if [ "$do_build" = 1 ]; then
  # Build type "Fuzz": none of CMake's own flags (Release's -DNDEBUG would drop the asserts); fuzz/CMakeLists.txt
  # gives -O2 -g -fno-omit-frame-pointer with the sanitizers.
  cmake -S . -B "$build" -DLOOM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Fuzz -DLOOM_NATIVE=OFF >/dev/null
  cmake --build "$build" -j "$jobs" --target fuzz_all
fi
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# Seeds too big to commit (a SentencePiece model) are made once per build directory.
if [ ! -d "$build/seeds/fuzz_sentencepiece" ]; then
  mkdir -p "$build/seeds"
  /usr/bin/python3 fuzz/make_seeds.py "$build/seeds" --spm
fi

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:abort_on_error=0"
# Long runs record no allocation stacks (malloc_context_size=0: 28% more inputs a second on the targets that
# register loom train's ~700 flags per input); what they find is replayed with full stacks by the smoke run
# (fuzz/regressions/) or by running the target on the saved input.
[ "$mode" = long ] && ASAN_OPTIONS+=":malloc_context_size=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# -malloc_limit_mb: no single allocation of 512 MB or more from these small inputs; -timeout: no input
# may take 10 s (a hang).
limits=(-rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10)

failed=()
report=()
for t in "${targets[@]}"; do
  bin="$build/fuzz/$t"
  [ -x "$bin" ] || { echo "scripts/fuzz.sh: no target $t" >&2; exit 2; }
  # Replay every kept crash input: each must now run clean.
  shopt -s nullglob
  regressions=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if [ ${#regressions[@]} -gt 0 ]; then
    if ! "$bin" "${limits[@]}" "${regressions[@]}" >"$build/$t.replay.log" 2>&1; then
      echo "FAIL $t: a regression input fails again (see $build/$t.replay.log)"; tail -30 "$build/$t.replay.log"
      failed+=("$t"); continue
    fi
    echo "ok   $t: ${#regressions[@]} regression input(s) replayed"
  fi
  corpus="$build/corpus/$t" artifacts="$build/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  for d in fuzz/corpus/"$t" "$build/seeds/$t"; do [ -d "$d" ] && seeds+=("$d"); done
  if [ "$mode" = smoke ]; then
    budget=(-max_total_time="$seconds")
  else
    budget=(-runs="$runs")
    [ "$max_seconds" -gt 0 ] && budget+=(-max_total_time="$max_seconds")
  fi
  log="$build/$t.$mode.log"
  start=$(date +%s%N)
  if "$bin" "${limits[@]}" "${budget[@]}" -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" "${seeds[@]}" \
      >"$log" 2>&1; then status=ok; else status=FAIL; failed+=("$t"); fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  # libFuzzer's last status line ("#1000000 DONE cov: 812 ft: 3021 corp: 190/14Kb ...") and final stats.
  last=$(grep -aE '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(grep -aoE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  corp=$(echo "$last" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  line=$(printf "%-24s %-4s execs %9s  %5d.%d s  cov %5s  ft %6s  corpus %5s" "$t" "$status" "$execs" $((ms / 1000)) $((ms % 1000 / 100)) "$cov" "$ft" "$corp")
  echo "$line"
  report+=("$line")
  if [ "$status" = FAIL ]; then
    grep -aE 'ERROR: |runtime error|==ERROR|SUMMARY|Test unit written' "$log" | head -10 || true
  fi
done

if [ "$mode" = long ]; then
  echo; echo "== long run: $runs inputs per target"; printf '%s\n' "${report[@]}"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: failing targets: ${failed[*]} (inputs under $build/artifacts/)" >&2
  exit 1
fi
