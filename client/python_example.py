#!/usr/bin/python3
"""Minimal Python client for attnserve: Encode with attention, decoded with numpy.

Needs Debian's python3-grpcio, python3-protobuf and python3-numpy (run it with
/usr/bin/python3), plus protoc and grpc_python_plugin (protobuf-compiler-grpc)
to generate the stubs. It generates them into a temporary directory on every
run, with the same command you would use to vendor them into your own code:

    protoc --proto_path=proto --python_out=OUT --grpc_out=OUT \
        --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin proto/attnserve.proto

(grpc_tools.protoc from pip is too old for some proto3 features: use the
Debian protoc as above.)

Usage, with attnserve running:

    /usr/bin/python3 client/python_example.py --ids 2,15,27,3 --layers 1 --fp16
    /usr/bin/python3 client/python_example.py --text "the cat sat" --layers 1
"""

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

import grpc
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.path.join(REPO, "proto")


def load_stubs():
    """Generates attnserve_pb2 / attnserve_pb2_grpc and imports them."""
    out = tempfile.mkdtemp(prefix="attnserve_py_")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    subprocess.run(
        [
            "protoc",
            f"--proto_path={PROTO_DIR}",
            f"--python_out={out}",
            f"--grpc_out={out}",
            "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
            os.path.join(PROTO_DIR, "attnserve.proto"),
        ],
        check=True,
    )
    sys.path.insert(0, out)
    import attnserve_pb2  # noqa: E402 (generated above)
    import attnserve_pb2_grpc  # noqa: E402

    return attnserve_pb2, attnserve_pb2_grpc


def to_numpy(pb, tensor):
    """Tensor (row-major, little-endian) → numpy array of its shape."""
    dtype = {pb.FLOAT32: "<f4", pb.FLOAT16: "<f2"}[tensor.dtype]
    return np.frombuffer(tensor.data, dtype=dtype).reshape(tuple(tensor.shape))


def service_config(lb, max_attempts=5):
    """What client/channel.cc sets for attnctl: load balancing, client-side
    health checking (a draining replica leaves the rotation at once) and
    retries of UNAVAILABLE (every attnserve call is idempotent)."""
    return json.dumps({
        "loadBalancingConfig": [{lb: {}}],
        "healthCheckConfig": {"serviceName": "attnserve.v1.Encoder"},
        "methodConfig": [{
            "name": [{"service": "attnserve.v1.Encoder"}],
            "retryPolicy": {
                "maxAttempts": max_attempts, "initialBackoff": "0.05s",
                "maxBackoff": "1s", "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"]}}]})


def int_list(text):
    return [int(x) for x in text.split(",") if x.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="localhost:50051",
                        help="any gRPC target: host:port, dns:///name:port, "
                        "ipv4:host:a,host:b")
    parser.add_argument("--lb", default="round_robin",
                        choices=["round_robin", "pick_first"])
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    parser.add_argument("--ids", type=int_list, default=[2, 15, 27, 3],
                        help="token ids incl. [CLS]/[SEP], comma-separated")
    parser.add_argument("--text", help="text tokenized by the server "
                        "(instead of --ids)")
    parser.add_argument("--layers", type=int_list, default=[], help="empty = all")
    parser.add_argument("--heads", type=int_list, default=[], help="empty = all")
    parser.add_argument("--fp16", action="store_true", help="FLOAT16 attention")
    args = parser.parse_args()

    pb, pb_grpc = load_stubs()
    channel = grpc.insecure_channel(
        args.target, options=[("grpc.max_receive_message_length", -1),
                              ("grpc.enable_retries", 1),
                              ("grpc.service_config", service_config(args.lb))])
    stub = pb_grpc.EncoderStub(channel)

    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=args.timeout)
    print(f"model {info.name}: {info.num_layers} layers, {info.num_heads} heads, "
          f"hidden {info.hidden_size}")

    request = pb.EncodeRequest(
        sequences=[pb.Sequence(text=args.text) if args.text
                   else pb.Sequence(token_ids=args.ids)],
        return_hidden_states=True,
        attention=pb.AttentionRequest(
            layers=args.layers, heads=args.heads,
            dtype=pb.FLOAT16 if args.fp16 else pb.FLOAT32),
    )
    try:
        response = stub.Encode(request, timeout=args.timeout)
    except grpc.RpcError as e:
        print(f"python_example: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1

    result = response.results[0]
    hidden = to_numpy(pb, result.hidden_states)  # (T, hidden)
    attention = to_numpy(pb, result.attention)   # (layers, heads, T, T)
    print(f"hidden_states {hidden.shape} {hidden.dtype}; token 0: "
          f"{np.array2string(hidden[0, :4], precision=4)} ...")
    print(f"attention {attention.shape} {attention.dtype} "
          "[layer, head, query, key]; rows sum to "
          f"{attention.astype(np.float32).sum(-1).mean():.4f}")
    # Token strings come back with the result (when the model has a vocab).
    tokens = list(result.tokens) or [str(i) for i in result.token_ids]
    print("tokens: " + " ".join(tokens))
    layers = args.layers or list(range(attention.shape[0]))
    heads = args.heads or list(range(attention.shape[1]))
    for li, layer in enumerate(layers):
        for hi, head in enumerate(heads):
            m = attention[li, hi]
            q, k = np.unravel_index(np.argmax(m), m.shape)
            print(f"  layer {layer} head {head}: strongest {tokens[q]} -> "
                  f"{tokens[k]} ({float(m[q, k]):.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
