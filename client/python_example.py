#!/usr/bin/python3
"""Python client example for attnserve: Encode with attention, with the package.

Uses the attnserve package in client/python (`pip install ./client/python`
into a venv made with `python3 -m venv --system-site-packages`); run from a
checkout without installing, it imports the package from client/python.
Needs Debian's python3-grpcio, python3-protobuf and python3-numpy.

Usage, with attnserve running:

    /usr/bin/python3 client/python_example.py --ids 2,15,27,3 --layers 1 --fp16
    /usr/bin/python3 client/python_example.py --text "the cat sat" --layers 1

Against a server with TLS and tokens (README "Operate"), and printing the
server's timings (x-total-time, x-queue-time, ... response metadata):

    ATTNSERVE_TOKEN=... /usr/bin/python3 client/python_example.py --tls \\
        --ca ca.pem [--cert client.pem --key client.key] [--server_name NAME] \\
        [--token_file FILE] --verbose
"""

import argparse
import os
import sys

import numpy as np

try:
    import attnserve
except ImportError:  # a checkout: the package's source is beside this file
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "python"))
    import attnserve


def int_list(text):
    return [int(x) for x in text.split(",") if x.strip()]


def token(args):
    """--token_file, else $ATTNSERVE_TOKEN (as attnctl), else none."""
    if args.token_file:
        with open(args.token_file, encoding="ascii") as f:
            return f.read().strip()
    return os.environ.get("ATTNSERVE_TOKEN", "").strip() or None


def print_timings(method, client):
    """The server's x-* metadata of the last call: milliseconds, and
    x-compute-tokens."""
    timings = [f"{k}={v}{' ms' if k.endswith('-time') else ''}"
               for k, v in client.last_metadata.items() if k.startswith("x-")]
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

    tls = None
    if args.tls or args.ca or args.cert or args.key or args.server_name:
        tls = attnserve.TLS(ca=args.ca, cert=args.cert, key=args.key,
                            server_name=args.server_name)
    try:
        with attnserve.Client(args.target, token=token(args), tls=tls,
                              timeout=args.timeout, lb=args.lb) as client:
            info = client.info()
            print(f"model {info.name}: {info.num_layers} layers, "
                  f"{info.num_heads} heads, hidden {info.hidden_size}")
            out = client.encode(args.text if args.text else [args.ids],
                                hidden=True, attention=True,
                                layers=args.layers or None,
                                heads=args.heads or None, fp16=args.fp16)
            if args.verbose:
                print_timings("Encode", client)
    except attnserve.AttnserveError as e:
        print(f"python_example: {e}", file=sys.stderr)
        return 1

    result = out[0]
    hidden = result.hidden_states  # (T, hidden)
    attention = result.attention   # (layers, heads, T, T)
    print(f"hidden_states {hidden.shape} {hidden.dtype}; token 0: "
          f"{np.array2string(hidden[0, :4], precision=4)} ...")
    print(f"attention {attention.shape} {attention.dtype} "
          "[layer, head, query, key]; rows sum to "
          f"{attention.astype(np.float32).sum(-1).mean():.4f}")
    # Token strings come back with the result (when the model has a vocab).
    tokens = result.tokens or [str(i) for i in result.token_ids]
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
