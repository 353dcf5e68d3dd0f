#!/bin/bash
# What Prometheus metrics and the access log cost per request, from the repo
# root:
#
#   bench/operate_overhead.sh [MODEL_DIR] [operate_bench flags: --rounds=N --calls=N]
#
# Starts two attnserve on MODEL_DIR (default tests/data/tiny_bert, where a
# call is cheapest and a fixed cost shows most) on loopback: A with
# --metrics_address and --log_requests (its stderr, the access log, to a
# file), B with neither. bench/operate_bench.cc then alternates blocks of
# calls between them (ABBA) and prints each one's latency and the difference
# per call. A curl scrapes A's /metrics every second meanwhile, as Prometheus
# would (more often than its default 15 s). Builds attnserve and
# operate_bench into ${BUILD:-build} first; prints lscpu's model name and the
# load average, which BENCHMARKS.md records with the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=tests/data/tiny_bert
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then MODEL=$1; shift; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

cmake --build "$BUILD" -j2 --target attnserve operate_bench >/dev/null
out=$(mktemp -d /tmp/attnserve_overhead_XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT

# start NAME FLAGS...: an attnserve on a free port; sets PORT.
start() {
  local name=$1
  shift
  "$BUILD/bin/attnserve" --model="$MODEL" --address=127.0.0.1:0 "$@" \
    2>"$out/$name.log" &
  pids+=($!)
  for _ in $(seq 600); do
    PORT=$(sed -n 's/^attnserve: serving .* on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out/$name.log")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "attnserve $name did not start:" >&2
  cat "$out/$name.log" >&2
  exit 1
}

start a --metrics_address=127.0.0.1:0 --log_requests=true
a=$PORT
metrics=$(sed -n 's/^attnserve: metrics on \(http:.*\)$/\1/p' "$out/a.log")
start b --log_requests=false
b=$PORT
(while sleep 1; do curl -s -o /dev/null "$metrics" || true; done) &
pids+=($!)

echo "host: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, OMP_NUM_THREADS=$OMP_NUM_THREADS"
echo "model: $MODEL; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bin/operate_bench" --micro
"$BUILD/bin/operate_bench" --a=127.0.0.1:"$a" --b=127.0.0.1:"$b" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "A wrote $(grep -c '^time=' "$out/a.log") access log lines; B $(grep -c '^time=' "$out/b.log" || true)"
