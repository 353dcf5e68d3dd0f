#!/usr/bin/env bash
# Installs the Debian 12 packages attnserve builds and tests against.
# Usage: scripts/install_deps.sh [--test | --unit-test]
#   --test       adds what the whole test suite needs (browser, Python, YAML,
#                Prometheus, clang for the sanitizer and fuzzing builds)
#   --unit-test  adds GoogleTest, openssl and curl: enough for ctest without the
#                browser, Python, Prometheus and deploy-manifest tests (the
#                image build, docker/Dockerfile)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev ocl-icd-opencl-dev            # oneDNN 2.6 (its CMake config needs OpenCL)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  nlohmann-json3-dev libutf8proc-dev
  prometheus-cpp-dev libssl-dev grpc-proto  # metrics endpoint; token digests and TLS checks; health.proto
  libsentencepiece-dev                      # XLM-R / CamemBERT tokenizers
)
case "${1:-}" in
  "") ;;
  # openssl, curl: the TLS tests make certificates, the metrics tests scrape.
  --unit-test) packages+=(libgtest-dev libgmock-dev googletest openssl curl) ;;
  # python3-yaml: docker/k8s_test.sh parses the deploy manifests. prometheus:
  # promtool and a real Prometheus for the metrics tests (they skip without).
  # python3-venv, -pip (and the python3-wheel it brings: pip then builds
  # client/python offline), -pytest, -protobuf: client/python/run_tests.sh.
  --test) packages+=(libgtest-dev libgmock-dev googletest chromium python3-grpcio python3-numpy
                     python3-yaml openssl curl prometheus python3-venv python3-pip
                     python3-pytest python3-protobuf
                     # scripts/sanitize.sh and scripts/fuzz.sh: clang-14 with its
                     # sanitizer and libFuzzer runtimes, llvm-symbolizer-14 (llvm-14)
                     clang-14 libclang-rt-14-dev llvm-14) ;;
  *) echo "usage: $0 [--test | --unit-test]" >&2; exit 2 ;;
esac
# tokenizer_parity_test runs Hugging Face's tokenizers (npm ci in
# tools/hf_tokenizers, from the npm registry). Machines that already have a
# Node.js (NodeSource's nodejs bundles npm and conflicts with Debian's npm
# package) keep theirs; only a machine without node or npm gets Debian's.
if [ "${1:-}" = --test ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  packages+=(nodejs npm)
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
