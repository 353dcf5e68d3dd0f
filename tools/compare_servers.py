#!/usr/bin/python3
"""Checks that two attnserve builds answer byte for byte alike.

For refactors that must not change behaviour: starts each `attnserve` binary
on the same model, sends the same fixed corpus of requests (valid ones, and
one of every kind of refusal the validator knows), and compares each answer's
status code, message and serialized response bytes.

    /usr/bin/python3 tools/compare_servers.py OLD/attnserve NEW/attnserve MODEL_DIR

Exits 0 when every answer matches, 1 with the first differences otherwise.
Needs python3-grpcio and protoc + grpc_python_plugin (as client/python_example.py).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

import grpc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_stubs():
    out = tempfile.mkdtemp(prefix="attnserve_cmp_")
    subprocess.run(
        ["protoc", f"--proto_path={REPO}/proto", f"--python_out={out}",
         f"--grpc_out={out}",
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
         f"{REPO}/proto/attnserve.proto"], check=True)
    sys.path.insert(0, out)
    import attnserve_pb2
    import attnserve_pb2_grpc
    return attnserve_pb2, attnserve_pb2_grpc


def corpus(pb):
    """(method, request) pairs: every option and every refusal we know of."""
    seq = lambda **kw: pb.Sequence(**kw)
    ids = [2, 10, 11, 12, 3]
    enc = lambda **kw: ("Encode", pb.EncodeRequest(**kw))
    items = [
        enc(sequences=[seq(token_ids=ids)]),
        enc(sequences=[seq(token_ids=ids), seq(token_ids=[2, 5, 3])],
            return_hidden_states=True),
        enc(sequences=[seq(text="The animal didn't cross the street")],
            attention=pb.AttentionRequest()),
        enc(sequences=[seq(text="the cat sat", text_pair="on the mat")],
            attention=pb.AttentionRequest(layers=[1], heads=[2, 0], stats=True,
                                          dtype=pb.FLOAT16)),
        enc(sequences=[seq(text="a b c d")],
            attention=pb.AttentionRequest(query_positions=[2, 1], rollout=True)),
        enc(sequences=[seq(text="a b c")],
            attention=pb.AttentionRequest(omit_maps=True, stats=True)),
        enc(sequences=[seq(token_ids=ids)], pooling=pb.POOLING_MEAN,
            normalize=True),
        enc(sequences=[seq(token_ids=ids)],
            head_mask=[pb.HeadRef(layer=0, head=1), pb.HeadRef(layer=1, head=0)]),
        enc(sequences=[seq(text="x" * 300)], truncate=True),
        # Refusals.
        enc(),
        enc(sequences=[seq()]),
        enc(sequences=[seq(token_ids=[2, 10**6, 3])]),
        enc(sequences=[seq(token_ids=[2, -1, 3])]),
        enc(sequences=[seq(token_ids=[5] * 1000)]),
        enc(sequences=[seq(token_ids=ids, token_type_ids=[0, 0])]),
        enc(sequences=[seq(token_ids=ids, token_type_ids=[0, 0, 9, 0, 0])]),
        enc(sequences=[seq(token_ids=ids, text="both")]),
        enc(sequences=[seq(text_pair="only pair")]),
        enc(sequences=[seq(text="x" * 300)]),
        enc(sequences=[seq(token_ids=ids)], model="nope"),
        enc(sequences=[seq(token_ids=ids)],
            attention=pb.AttentionRequest(layers=[99])),
        enc(sequences=[seq(token_ids=ids)],
            attention=pb.AttentionRequest(heads=[1, 1])),
        enc(sequences=[seq(token_ids=ids)],
            attention=pb.AttentionRequest(query_positions=[7])),
        enc(sequences=[seq(token_ids=ids)],
            attention=pb.AttentionRequest(query_positions=[1, 1])),
        enc(sequences=[seq(token_ids=ids)],
            attention=pb.AttentionRequest(omit_maps=True)),
        enc(sequences=[seq(token_ids=ids)],
            attention=pb.AttentionRequest(omit_maps=True, stats=True,
                                          query_positions=[1])),
        enc(sequences=[seq(token_ids=ids)],
            attention=pb.AttentionRequest(dtype=7)),
        enc(sequences=[seq(token_ids=ids)], pooling=pb.POOLING_POOLER),
        enc(sequences=[seq(token_ids=ids)], pooling=pb.POOLING_NONE,
            normalize=True),
        enc(sequences=[seq(token_ids=ids)], pooling=42),
        enc(sequences=[seq(token_ids=ids)],
            head_mask=[pb.HeadRef(layer=9, head=0)]),
        enc(sequences=[seq(token_ids=ids)],
            head_mask=[pb.HeadRef(layer=0, head=99)]),
        enc(sequences=[seq(token_ids=ids)],
            head_mask=[pb.HeadRef(layer=0, head=1), pb.HeadRef(layer=0, head=1)]),
        enc(sequences=[seq(token_ids=[5] * 40)] * 300),
        ("Tokenize", pb.TokenizeRequest(sequences=[seq(text="Héllo, wörld!")])),
        ("Tokenize", pb.TokenizeRequest(sequences=[seq(token_ids=ids)])),
        ("Tokenize", pb.TokenizeRequest()),
        ("GetModelInfo", pb.GetModelInfoRequest()),
        ("RankHeads", pb.RankHeadsRequest(sequences=[seq(text="the cat sat")])),
        ("RankHeads", pb.RankHeadsRequest(sequences=[seq(token_ids=ids)],
                                          pooling=pb.POOLING_CLS)),
        ("RankHeads", pb.RankHeadsRequest(sequences=[seq(token_ids=ids)],
                                          pooling=pb.POOLING_NONE)),
        ("RankHeads", pb.RankHeadsRequest(sequences=[seq(token_ids=[5] * 40)] * 80)),
        ("RankHeads", pb.RankHeadsRequest(sequences=[seq(token_ids=[2, 10**6])])),
    ]
    return items


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(binary, model, pb, pb_grpc):
    port = free_port()
    proc = subprocess.Popen([binary, f"--model={model}",
                             f"--address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = pb_grpc.EncoderStub(channel)
        out = []
        for method, request in corpus(pb):
            try:
                response = getattr(stub, method)(request, timeout=60)
                out.append(("OK", "", response.SerializeToString(deterministic=True)))
            except grpc.RpcError as e:
                out.append((e.code().name, e.details(), b""))
        # An invalid UTF-8 string: sent as raw bytes, parsed by the server.
        raw = channel.unary_unary("/attnserve.v1.Encoder/Encode",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
        try:
            out.append(("OK", "", raw(b"\x12\x05\x1a\x03a\xffb", timeout=30)))
        except grpc.RpcError as e:
            out.append((e.code().name, e.details(), b""))
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    old, new, model = sys.argv[1:]
    pb, pb_grpc = load_stubs()
    a = answers(old, model, pb, pb_grpc)
    b = answers(new, model, pb, pb_grpc)
    names = [m for m, _ in corpus(pb)] + ["Encode(raw invalid UTF-8)"]
    differ = 0
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            differ += 1
            print(f"#{i} {names[i]}:\n  old {x[0]} {x[1]!r} {len(x[2])} bytes\n"
                  f"  new {y[0]} {y[1]!r} {len(y[2])} bytes")
    codes = {}
    for code, _, _ in a:
        codes[code] = codes.get(code, 0) + 1
    print(f"{len(a)} requests ({', '.join(f'{k} {v}' for k, v in sorted(codes.items()))}): "
          f"{len(a) - differ} identical, {differ} different")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
