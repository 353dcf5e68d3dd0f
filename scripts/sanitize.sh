#!/usr/bin/env bash
# Builds attnserve and its tests with clang-14 sanitizers and runs them.
#
#   scripts/sanitize.sh address   ASan + UBSan (-fno-sanitize-recover=undefined)
#                                 over the whole test suite, in build-asan/
#   scripts/sanitize.sh thread    TSan over the server, batcher and completion
#                                 tests, in build-tsan/
#
# Extra arguments go to ctest (e.g. -R ServerTest). Any report fails the run.
#
# What is not ours: Debian's gRPC, protobuf, Abseil, oneDNN and the OpenMP
# runtime are prebuilt with gcc and not instrumented. ASan and UBSan check our
# code only, which is what we want (scripts/sanitizers/lsan.supp lists the
# leaks at exit inside those libraries). TSan cannot see the synchronization
# inside them, so the TSan runs:
# - set ignore_noninstrumented_modules=1: TSan ignores the libc calls (memcpy,
#   free, sendmsg, mutexes) made by uninstrumented libraries, whose ordering
#   it cannot see (gRPC's transport hands buffers between its threads through
#   lock-free queues; OpenMP through barriers). Our code's accesses are all
#   still checked. scripts/sanitizers/tsan.supp says what else was tried; its
#   two suppressions cover gRPC's C++ headers handing a call to libgrpc and
#   finishing it on another thread (the report's top frame is gRPC's code).
# - use OMP_NUM_THREADS=1: TSan's advice for OpenMP; with one thread there is
#   no team to misread, and the model's threading is single-threaded by
#   design (one inference thread, ARCHITECTURE.md §3). TSan is here to check
#   our threads: gRPC's, the inference thread and the completion thread.
# - link tests/tsan/absl_sync_tsan.cc: Abseil's Mutex and CondVar carry no
#   TSan annotations in Debian's build, so every mutex-protected access of
#   ours looked like a race; the file wraps them and tells TSan.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-}"
shift || true
case "$MODE" in
  address) BUILD="${BUILD_DIR:-build-asan}" ;;
  thread) BUILD="${BUILD_DIR:-build-tsan}" ;;
  *) echo "usage: scripts/sanitize.sh address|thread [ctest args]" >&2; exit 2 ;;
esac
if ! command -v clang++-14 >/dev/null; then
  echo "sanitize.sh: clang++-14 is missing: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 1
fi
SUPP="$PWD/scripts/sanitizers"
# The address build also gives the libFuzzer targets (the same ASan + UBSan
# flags, plus coverage): `FUZZ_BUILD_DIR=build-asan scripts/fuzz.sh` then runs
# them without compiling our code a third time (CI, scripts/test.sh).
FUZZ=""
if [ "$MODE" = address ]; then FUZZ="-DATTNSERVE_FUZZ=ON"; fi
# -O1 keeps the build and the runs fast enough for CI; line tables are all the
# reports need.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DATTNSERVE_SANITIZE="$MODE" $FUZZ >/dev/null
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14 || true)}"
export TSAN_SYMBOLIZER_PATH="$ASAN_SYMBOLIZER_PATH"

if [ "$MODE" = address ]; then
  cmake --build "$BUILD" -j "$(nproc)"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
  export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
  ctest --test-dir "$BUILD" --output-on-failure --timeout 900 -j 2 "$@"
else
  TESTS=(batcher_test server_completion_executor_test server_test
         server_text_test server_heads_test server_reliability_test)
  cmake --build "$BUILD" -j "$(nproc)" --target "${TESTS[@]}"
  export TSAN_OPTIONS="suppressions=$SUPP/tsan.supp:ignore_noninstrumented_modules=1:halt_on_error=1:second_deadlock_stack=1:history_size=4"
  export OMP_NUM_THREADS=1
  ctest --test-dir "$BUILD" --output-on-failure --timeout 900 -j 2 \
    -R '^([A-Za-z]+/)?(Batcher[A-Za-z]*Test|ServerCompletionExecutorTest|Server[A-Za-z]*Test)\.' "$@"
fi
