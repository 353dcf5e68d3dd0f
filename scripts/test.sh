#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test. CI runs this (.ci/run).
# Last, the container smoke test: it builds the image and runs it with docker
# or podman, and skips itself (exit 0) where neither can run containers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --test
scripts/build.sh -DATTNSERVE_WERROR=ON
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 600 -j 2
docker/smoke_test.sh
# Reliability (RELIABILITY.md): the load and fault driver in its short form
# (20 s of mixed load, then overload, SIGTERM, kill -9, bad checkpoints and
# determinism in fp32/bf16/int8), ASan+UBSan over the whole suite, TSan over
# the server, batcher and completion tests, and 60 s of fuzzing per target.
/usr/bin/python3 tests/soak/soak.py --duration 20
scripts/sanitize.sh address
scripts/sanitize.sh thread
scripts/fuzz.sh 60
