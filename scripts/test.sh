#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test. CI runs this (.ci/run).
# Last, the container smoke test: it builds the image and runs it with docker
# or podman, and skips itself (exit 0) where neither can run containers.
#
# Each step prints its wall time ("test.sh: ... took N s"); RELIABILITY.md
# ("CI time") has the figures and what keeps the whole run under 45 minutes
# on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
step() {
  local t0=$SECONDS
  "$@"
  echo "test.sh: '$*' took $((SECONDS - t0)) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
}
step scripts/install_deps.sh --test
step scripts/build.sh -DATTNSERVE_WERROR=ON
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
step ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 600 -j 2
# The image's build stage skips its unit tests here (they ran just above, on
# the same Debian packages); docker/build.sh alone still runs them.
step env ATTNSERVE_IMAGE_UNIT_TESTS=0 docker/smoke_test.sh
# Reliability (RELIABILITY.md): the load and fault driver in its short form
# (20 s of mixed load, then overload, SIGTERM, kill -9, bad checkpoints and
# determinism in fp32/bf16/int8), ASan+UBSan over the whole suite, TSan over
# the server, batcher and completion tests, and 60 s of fuzzing per target.
# The fuzz targets come from the ASan build (sanitize.sh address configures
# it with ATTNSERVE_FUZZ=ON): our code is compiled once for both.
step /usr/bin/python3 tests/soak/soak.py --duration 20
step scripts/sanitize.sh address
step scripts/sanitize.sh thread
step env FUZZ_BUILD_DIR=build-asan scripts/fuzz.sh 60
