#!/usr/bin/env bash
# Regenerates the committed Python stubs of proto/attnserve.proto and
# proto/inference.proto into attnserve/proto/ (or into the directory given),
# with Debian's protoc and grpc_python_plugin (protobuf-compiler-grpc).
#
#   client/python/generate_stubs.sh [OUT_DIR]
#
# The .proto files are staged under attnserve/proto/ in a temporary proto
# path, so protoc names them "attnserve/proto/X.proto" and the gRPC stubs
# import their messages as "from attnserve.proto import X_pb2": package
# imports, no sys.path tricks and no rewriting of generated code.
# tests/test_stubs.py runs this into a temporary directory and fails when the
# result differs from the committed files.
#
# (Debian's python3-grpc-tools bundles a protoc too old for some proto3
# features; the system protoc matches the C++ build's.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$here/attnserve/proto}"
protoc="${PROTOC:-protoc}"
plugin="${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || echo /usr/bin/grpc_python_plugin)}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/attnserve/proto" "$stage/out" "$out"
cp "$repo/proto/attnserve.proto" "$repo/proto/inference.proto" "$stage/attnserve/proto/"
"$protoc" --proto_path="$stage" --python_out="$stage/out" --grpc_out="$stage/out" \
  --plugin=protoc-gen-grpc="$plugin" \
  "$stage/attnserve/proto/attnserve.proto" "$stage/attnserve/proto/inference.proto"
for f in attnserve_pb2.py attnserve_pb2_grpc.py inference_pb2.py inference_pb2_grpc.py; do
  cp "$stage/out/attnserve/proto/$f" "$out/$f"
done
