#!/bin/bash
# The issue-4 benchmark in one command, from the repo root:
#
#   bench/run.sh [--quick] [run.py options: --rounds N, --systems a,b, --shapes x,y, ...]
#
# 1. installs what is missing (Debian: OpenBLAS for PyTorch, torch, numpy, node,
#    the C++ build dependencies; npm: onnxruntime-node into bench/out/node),
# 2. generates the random-weight BERT-base, RoBERTa-base and DistilBERT-base if
#    missing (bench/make_bert_base.py, bench/make_family_models.py),
# 3. builds encoder_bench, grpc_bench and attnserve in build-bench/ (-j2),
# 4. runs bench/run.py: every system interleaved, OMP_NUM_THREADS=2, medians,
#    a markdown report printed and kept in bench/out/runs/<time>/report.md.
# A full run takes ~15 minutes on a quiet 2-core machine (--quick ~5); while
# others compile, rounds stretch 2-5x: the report says how noisy each segment was.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_NODE_VERSION=1.30.0
BUILD=${BUILD:-build-bench}
export OMP_NUM_THREADS=2

log() { echo "[run.sh] $*" >&2; }

# --- 1. packages ------------------------------------------------------------
need=()
for p in python3-torch python3-numpy libopenblas0-openmp cmake g++ pkg-config \
         libdnnl-dev ocl-icd-opencl-dev libgrpc++-dev protobuf-compiler-grpc \
         libprotobuf-dev libabsl-dev nlohmann-json3-dev libutf8proc-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# PyTorch from Debian calls whatever libblas.so.3 is: the reference BLAS is ~56x
# slower than OpenBLAS (docs/ARCHITECTURE.md §6).
blas=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu || true)
case "$blas" in
  *openblas*) ;;
  *) log "libblas.so.3 is $blas, not OpenBLAS: PyTorch numbers would be meaningless"; exit 1 ;;
esac

if [ ! -d bench/out/node/node_modules/onnxruntime-node ]; then
  log "npm install onnxruntime-node@$ORT_NODE_VERSION"
  mkdir -p bench/out/node
  # skip: its post-install otherwise fetches CUDA files; the CPU library is bundled.
  ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --no-audit --no-fund \
    --prefix bench/out/node "onnxruntime-node@$ORT_NODE_VERSION"
fi

# --- 2. model -----------------------------------------------------------------
/usr/bin/python3 bench/make_bert_base.py
/usr/bin/python3 bench/make_family_models.py   # RoBERTa-base, DistilBERT-base

# --- 3. build -----------------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DATTNSERVE_BUILD_TESTS=OFF >/dev/null
fi
log "building encoder_bench grpc_bench attnserve in $BUILD"
cmake --build "$BUILD" -j2 --target encoder_bench >/dev/null
# The gRPC side is optional: if it does not build (say, mid-edit), run.py reports
# "attnserve-grpc not available" rather than timing a stale binary.
skip=()
if ! cmake --build "$BUILD" -j2 --target grpc_bench attnserve >"$BUILD/server-build.log" 2>&1; then
  log "attnserve/grpc_bench did not build (see $BUILD/server-build.log): no gRPC runs"
  skip=(--server-build-failed "$BUILD/server-build.log")
fi

# --- 4. run -------------------------------------------------------------------
log "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews results)"
exec /usr/bin/python3 bench/run.py --build "$BUILD" --command "bench/run.sh $*" "${skip[@]}" "$@"
