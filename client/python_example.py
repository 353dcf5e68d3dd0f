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

Against a server with TLS and tokens (README "Operate"), and printing the
server's timings (x-total-time, x-queue-time, ... response metadata):

    ATTNSERVE_TOKEN=... /usr/bin/python3 client/python_example.py --tls \
        --ca ca.pem [--cert client.pem --key client.key] [--server_name NAME] \
        [--token_file FILE] --verbose
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


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def open_channel(args):
    """Plaintext, or TLS (server checked against --ca, else the system's roots;
    --cert/--key for servers that require a client certificate); load
    balancing and retries as service_config() says."""
    options = [("grpc.max_receive_message_length", -1),
               ("grpc.enable_retries", 1),
               ("grpc.service_config", service_config(args.lb))]
    if not (args.tls or args.ca or args.cert or args.server_name):
        return grpc.insecure_channel(args.target, options=options)
    if bool(args.cert) != bool(args.key):
        raise SystemExit("python_example: --cert and --key go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_bytes(args.ca) if args.ca else None,
        private_key=read_bytes(args.key) if args.key else None,
        certificate_chain=read_bytes(args.cert) if args.cert else None)
    if args.server_name:
        options.append(("grpc.ssl_target_name_override", args.server_name))
    return grpc.secure_channel(args.target, credentials, options=options)


def call_metadata(args):
    """authorization: Bearer <token> from --token_file or $ATTNSERVE_TOKEN."""
    if args.token_file:
        with open(args.token_file, encoding="ascii") as f:
            token = f.read().strip()
    else:
        token = os.environ.get("ATTNSERVE_TOKEN", "").strip()
    return [("authorization", f"Bearer {token}")] if token else []


def print_timings(method, call):
    """The server's x-* initial metadata: milliseconds, and x-compute-tokens."""
    timings = [f"{k}={v}{' ms' if k.endswith('-time') else ''}"
               for k, v in call.initial_metadata() if k.startswith("x-")]
    print(f"{method}: " + " ".join(timings), file=sys.stderr)


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
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca", help="PEM CA certificates to verify the server")
    parser.add_argument("--cert", help="PEM client certificate (mTLS)")
    parser.add_argument("--key", help="PEM key of --cert")
    parser.add_argument("--server_name",
                        help="name the server certificate must carry")
    parser.add_argument("--token_file", help="bearer token (default: "
                        "$ATTNSERVE_TOKEN)")
    parser.add_argument("--verbose", action="store_true",
                        help="print the server's timings on stderr")
    args = parser.parse_args()

    pb, pb_grpc = load_stubs()
    channel = open_channel(args)
    stub = pb_grpc.EncoderStub(channel)
    metadata = call_metadata(args)

    try:
        info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=args.timeout,
                                 metadata=metadata)
    except grpc.RpcError as e:
        print(f"python_example: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
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
        response, call = stub.Encode.with_call(request, timeout=args.timeout,
                                               metadata=metadata)
    except grpc.RpcError as e:
        print(f"python_example: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    if args.verbose:
        print_timings("Encode", call)

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
