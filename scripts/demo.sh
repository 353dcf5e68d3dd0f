#!/usr/bin/env bash
# Installs dependencies, builds, starts attnserve on a model and shows a real
# response with attention. Usage: scripts/demo.sh [MODEL_DIR]
# Without MODEL_DIR, the constructed demo model (docs/demo-model.md) is
# written (in C++) to ./demo_model first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
BIN="${BUILD_DIR:-build}/bin"
MODEL="${1:-}"
if [ -z "$MODEL" ]; then
  MODEL=demo_model
  "$BIN/make_demo_model" "$MODEL"  # 0.2 s; replaces an older random one
fi
PORT="${PORT:-50051}"
"$BIN/attnserve" --model="$MODEL" --address="127.0.0.1:$PORT" &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$BIN/attnctl" info --target="127.0.0.1:$PORT" --timeout=1 >/dev/null 2>&1 && break
  sleep 0.2
done
set -x
"$BIN/attnctl" info --target="127.0.0.1:$PORT"
TEXT="The animal didn't cross the street because it was too tired"
"$BIN/attnctl" encode --target="127.0.0.1:$PORT" "$TEXT" --attention --layers 2 --query it
"$BIN/attnctl" heads --target="127.0.0.1:$PORT" "$TEXT" --top 5
"$BIN/attnctl" prune-curve --target="127.0.0.1:$PORT" "$TEXT"
"$BIN/attnctl" attention --target="127.0.0.1:$PORT" "$TEXT" --html attention.html --rank
