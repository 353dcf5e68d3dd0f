#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang-14, ASan + UBSan) into
# ${FUZZ_BUILD_DIR:-build-fuzz} and runs each for SECONDS (default 60). Fails
# on any crash, leak, timeout or out-of-memory, leaving the input under
# ${FUZZ_OUT:-build-fuzz/out}/<target>/ (commit it to
# tests/fuzz/regressions/<target>/ once fixed: the normal suite replays it).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   FUZZ_RUNS=N   stop each target after N executions instead (for long runs,
#                 with SECONDS as the time cap)
#   FUZZ_JOBS     parallel workers per target (default 1: CI has 2 cores)
#
# New inputs found go to a scratch copy of the corpus, never into the
# committed tests/fuzz/corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
OUT="${FUZZ_OUT:-$BUILD/out}"
ALL=(safetensors config tokenizer_text vocab_files request oip_request)
TARGETS=("${@:-${ALL[@]}}")

if ! command -v clang++-14 >/dev/null; then
  echo "fuzz.sh: clang++-14 is missing: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 1
fi
# -O1 with line tables: what libFuzzer's documentation uses, and a build that
# fits CI on two cores.
# A build directory already configured with ATTNSERVE_FUZZ=ON is used as it is:
# scripts/sanitize.sh address configures build-asan so (the tests and the fuzz
# targets from one compile of our code; CI runs FUZZ_BUILD_DIR=build-asan).
if ! grep -qs '^ATTNSERVE_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DATTNSERVE_FUZZ=ON -DATTNSERVE_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target fuzz_all

export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14 || true)}"
# Leaks fail the run; UBSan stops at the first report (also compiled in).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS=1

failed=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/bin/fuzz_$t"
  work="$OUT/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048
        -max_len=8192 -print_final_stats=1
        -artifact_prefix="$work/artifacts/")
  if [ -f "tests/fuzz/dict/$t.dict" ]; then args+=(-dict="tests/fuzz/dict/$t.dict"); fi
  if [ -n "${FUZZ_RUNS:-}" ]; then args+=(-runs="$FUZZ_RUNS"); fi
  if [ -n "${FUZZ_JOBS:-}" ] && [ "$FUZZ_JOBS" -gt 1 ]; then
    args+=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
  fi
  echo "fuzz.sh: $t for ${SECONDS_PER_TARGET}s${FUZZ_RUNS:+ or $FUZZ_RUNS runs}"
  # The committed corpus is replayed first (it is the input directory's
  # start), then mutated.
  if "$bin" "${args[@]}" "$work/corpus" >"$work/log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/log" |
      sed "s/^/fuzz.sh: $t: /"
  else
    echo "fuzz.sh: $t FAILED; log $work/log, input(s) in $work/artifacts/" >&2
    tail -40 "$work/log" >&2
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#TARGETS[@]} targets clean"
