#!/usr/bin/env bash
# Installs the Debian 12 packages attnserve builds and tests against.
# Usage: scripts/install_deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev ocl-icd-opencl-dev            # oneDNN 2.6 (its CMake config needs OpenCL)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  nlohmann-json3-dev libutf8proc-dev
)
if [ "${1:-}" = "--test" ]; then
  packages+=(libgtest-dev libgmock-dev googletest chromium python3-grpcio python3-numpy)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
