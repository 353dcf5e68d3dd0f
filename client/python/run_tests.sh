#!/usr/bin/env bash
# The Python package's tests (ctest python_client), against a real server:
#
#   client/python/run_tests.sh path/to/attnserve [pytest arguments]
#
# 1. makes a venv with --system-site-packages in a temporary directory
#    (Debian's python3-grpcio, python3-protobuf, python3-numpy, python3-pytest),
# 2. runs the README's `pip install ./client/python` in it, offline
#    (PIP_NO_INDEX: any download fails), from a copy of client/python so that
#    the build leaves nothing in the source tree,
# 3. runs pytest on client/python/tests with the venv's python, which imports
#    the installed package (ATTNSERVE_EXPECT_INSTALLED makes a test check it).
# Exits 77 (ctest: skipped) with a message when python3-venv or
# python3-pytest is missing (scripts/install_deps.sh --test installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ $# -lt 1 ]; then
  echo "usage: $0 path/to/attnserve [pytest arguments]" >&2
  exit 2
fi
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
# Debian's python, whatever a pyenv or virtualenv first on PATH says.
python="${ATTNSERVE_PYTHON:-/usr/bin/python3}"
for module in venv ensurepip pytest grpc google.protobuf numpy; do
  if ! "$python" -c "import $module" 2>/dev/null; then
    echo "SKIPPED: $python cannot import $module" \
      "(scripts/install_deps.sh --test installs python3-venv, python3-pytest," \
      "python3-grpcio, python3-protobuf and python3-numpy)"
    exit 77
  fi
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv --system-site-packages "$tmp/venv"
mkdir -p "$tmp/repo/client"
cp -r "$here" "$tmp/repo/client/python"
rm -rf "$tmp/repo/client/python/build" "$tmp/repo/client/python"/*.egg-info
(
  cd "$tmp/repo"
  PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$tmp/venv/bin/pip" install --quiet ./client/python
)
cd "$tmp"
status=0
ATTNSERVE_BIN="$bin" ATTNSERVE_REPO="$repo" ATTNSERVE_EXPECT_INSTALLED=1 \
  OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" PYTHONDONTWRITEBYTECODE=1 \
  "$tmp/venv/bin/python" -m pytest -p no:cacheprovider -v -rs \
  --rootdir "$here" "$here/tests" "$@" || status=$?
exit "$status"
