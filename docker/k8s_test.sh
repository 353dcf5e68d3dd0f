#!/usr/bin/env bash
# Checks docker/k8s, docker/kserve, docker/compose.yaml and docker/Dockerfile
# against each other and against `attnserve --help` (docker/k8s_test.py says
# what and why). ctest runs it as deploy_manifests.
# Usage: docker/k8s_test.sh [ATTNSERVE_BINARY]   (default: $ATTNSERVE, else build/bin/attnserve)
set -euo pipefail
cd "$(dirname "$0")/.."
ATTNSERVE="${1:-${ATTNSERVE:-${BUILD_DIR:-build}/bin/attnserve}}"
if [ ! -x "$ATTNSERVE" ]; then
  echo "k8s_test: no attnserve binary at $ATTNSERVE (build first, or pass its path)" >&2
  exit 1
fi
# Debian's python3-yaml (scripts/install_deps.sh --test) is installed for
# /usr/bin/python3; a python3 earlier in PATH (pyenv, venv) may lack it.
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3

if command -v kubectl >/dev/null 2>&1; then
  rendered="$(mktemp)"
  trap 'rm -f "$rendered"' EXIT
  # Renders offline; fails on a broken kustomization or malformed resource.
  kubectl kustomize docker/k8s >"$rendered"
  kubectl kustomize docker/kserve >/dev/null
  echo "k8s_test: rendered docker/k8s and docker/kserve with kubectl kustomize"
  exec "$PYTHON" docker/k8s_test.py "$ATTNSERVE" "$rendered"
fi
echo "k8s_test: no kubectl: skipping the kustomize rendering; checking the files as written"
exec "$PYTHON" docker/k8s_test.py "$ATTNSERVE"
