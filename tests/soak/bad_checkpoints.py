#!/usr/bin/python3
"""Writes a corpus of broken model directories from a good one.

    /usr/bin/python3 tests/soak/bad_checkpoints.py tests/data/tiny_bert OUT_DIR

Each case is a copy of the good directory with one thing broken. `expect` is
what attnserve must do with it: "exit" (status 1, one line on stderr that
names `names`, the file at fault, within seconds) or "serve" (a directory
without any vocab is served for token ids only, as documented in the README).
tests/soak/soak.py runs them (scenario bad_checkpoints) and RELIABILITY.md
holds the table.
"""

import collections
import json
import math
import os
import shutil
import struct
import sys

Case = collections.namedtuple("Case", "name what dir expect names")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def write_safetensors(path, header, blob, pad=True):
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)


def write_corpus(good, out):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cases = []
    st_good = os.path.join(good, "model.safetensors")
    header, blob = read_safetensors(st_good)
    config = json.load(open(os.path.join(good, "config.json")))

    def case(name, what, expect="exit", names="model.safetensors"):
        d = os.path.join(out, name)
        shutil.copytree(good, d, ignore=shutil.ignore_patterns("golden*.json"))
        cases.append(Case(name, what, d, expect, names))
        return d

    def with_config(name, what, **changes):
        d = case(name, what, names="config.json")
        c = dict(config, **changes)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f)
        return d

    # ---- model.safetensors ------------------------------------------------
    raw = open(st_good, "rb").read()
    d = case("truncated_half", "model.safetensors cut to half its size")
    open(os.path.join(d, "model.safetensors"), "wb").write(raw[:len(raw) // 2])

    d = case("truncated_4_bytes", "model.safetensors shorter than its 8-byte header length")
    open(os.path.join(d, "model.safetensors"), "wb").write(raw[:4])

    d = case("empty_file", "model.safetensors of 0 bytes")
    open(os.path.join(d, "model.safetensors"), "wb").close()

    d = case("header_length_2_63", "header length field says 2^63 bytes")
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", 1 << 63) + raw[8:])

    d = case("header_not_json", "header bytes are not JSON")
    n = struct.unpack("<Q", raw[:8])[0]
    open(os.path.join(d, "model.safetensors"), "wb").write(
        raw[:8] + b"{" * n + raw[8 + n:])

    name = "encoder.layer.1.output.dense.weight"
    h = json.loads(json.dumps(header))
    h[name]["data_offsets"][1] = len(blob) + 4096
    d = case("offsets_past_end", "a tensor's data_offsets end 4 KiB past the file")
    write_safetensors(os.path.join(d, "model.safetensors"), h, blob)

    h = json.loads(json.dumps(header))
    h[name]["shape"] = [1 << 20, 1 << 20]
    d = case("shape_lies_huge", "a tensor claims shape [2^20, 2^20] (4 TiB) for its bytes")
    write_safetensors(os.path.join(d, "model.safetensors"), h, blob)

    h = json.loads(json.dumps(header))
    h[name]["shape"] = [1 << 40, 1 << 40]
    d = case("shape_overflows", "a tensor claims shape [2^40, 2^40] (overflows 64 bits)")
    write_safetensors(os.path.join(d, "model.safetensors"), h, blob)

    h = json.loads(json.dumps(header))
    h[name]["dtype"] = "I32"
    d = case("wrong_dtype", "a weight stored as I32 (right size, wrong type)")
    write_safetensors(os.path.join(d, "model.safetensors"), h, blob)

    h = json.loads(json.dumps(header))
    del h["embeddings.word_embeddings.weight"]
    d = case("missing_tensor", "embeddings.word_embeddings.weight absent")
    write_safetensors(os.path.join(d, "model.safetensors"), h, blob)

    for label, value in (("nan", math.nan), ("inf", math.inf)):
        begin, _ = header[name]["data_offsets"]
        b = bytearray(blob)
        b[begin + 4 * 5:begin + 4 * 6] = struct.pack("<f", value)
        d = case(f"{label}_weight", f"one {label.upper()} in {name}")
        write_safetensors(os.path.join(d, "model.safetensors"), header, bytes(b))

    d = case("missing_safetensors", "no model.safetensors")
    os.remove(os.path.join(d, "model.safetensors"))

    # ---- config.json ------------------------------------------------------
    with_config("hidden_1e9", "hidden_size 10^9 (heads divide it)", hidden_size=10**9)
    cases[-1] = cases[-1]._replace(names="model.safetensors")  # caught at the tensor
    with_config("layers_1e9", "num_hidden_layers 10^9", num_hidden_layers=10**9)
    cases[-1] = cases[-1]._replace(names="model.safetensors")
    with_config("positions_2_30", "max_position_embeddings 2^30", max_position_embeddings=1 << 30)
    cases[-1] = cases[-1]._replace(names="model.safetensors")
    with_config("vocab_2_31", "vocab_size 2^31 (past int32)", vocab_size=1 << 31)
    with_config("heads_do_not_divide", "num_attention_heads 5 for hidden 32", num_attention_heads=5)
    with_config("negative_layers", "num_hidden_layers -1", num_hidden_layers=-1)
    with_config("eps_zero", "layer_norm_eps 0", layer_norm_eps=0)
    # relu, gelu_new and gelu_pytorch_tanh are implemented since the encoder
    # families (model/checkpoint/families.cc); silu is not.
    with_config("silu", "hidden_act silu (gelu, gelu_new and relu are implemented)",
                hidden_act="silu")
    d = case("config_not_json", "config.json is not JSON", names="config.json")
    open(os.path.join(d, "config.json"), "w").write("{\"hidden_size\": 32,")
    d = case("missing_config", "no config.json", names="config.json")
    os.remove(os.path.join(d, "config.json"))

    # ---- vocab --------------------------------------------------------------
    d = case("missing_vocab", "no vocab.txt or tokenizer.json", expect="serve", names="")
    os.remove(os.path.join(d, "vocab.txt"))
    d = case("vocab_without_unk", "vocab.txt without [UNK]", names="vocab.txt")
    lines = open(os.path.join(good, "vocab.txt")).read().splitlines()
    open(os.path.join(d, "vocab.txt"), "w").write(
        "\n".join(l for l in lines if l != "[UNK]") + "\n")
    d = case("vocab_too_large", "vocab.txt with more tokens than vocab_size", names="vocab_size")
    open(os.path.join(d, "vocab.txt"), "w").write(
        "\n".join(lines + [f"extra{i}" for i in range(50)]) + "\n")
    d = case("tokenizer_json_broken", "tokenizer.json (no vocab.txt) is not JSON",
             names="tokenizer.json")
    os.remove(os.path.join(d, "vocab.txt"))
    open(os.path.join(d, "tokenizer.json"), "w").write("{\"model\": ")
    return cases


if __name__ == "__main__":
    for c in write_corpus(sys.argv[1], sys.argv[2]):
        print(f"{c.name}: {c.what} -> {c.expect} ({c.names})")
