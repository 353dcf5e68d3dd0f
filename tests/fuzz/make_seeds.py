#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/.

Run from the repository root (development time only; the output is committed):

    /usr/bin/python3 tests/fuzz/make_seeds.py

Deterministic: re-running gives byte-identical files. The seeds are real inputs
of each parser: checkpoints in the layout Hugging Face's safetensors writes
(small, so the fuzzer spends its time on structure, not on bulk floats), the
test fixtures' config.json and vocab files, the tokenizer test texts, and
requests encoded by protoc from text format. The byte-0 (and byte-1..2)
prefixes are each target's options, as tests/fuzz/fuzz_targets.h describes.
"""

import json
import os
import shutil
import struct
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
DATA = os.path.join(ROOT, "tests", "data")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(*path):
    with open(os.path.join(*path), "rb") as f:
        return f.read()


# ---- safetensors: the TinyConfig of safetensors_fuzz.cc --------------------
TINY = dict(vocab=8, hidden=4, layers=1, heads=2, inter=8, positions=8, types=2)


def weight_table(c, pooler):
    h, i = c["hidden"], c["inter"]
    table = [
        ("embeddings.word_embeddings.weight", [c["vocab"], h]),
        ("embeddings.position_embeddings.weight", [c["positions"], h]),
        ("embeddings.token_type_embeddings.weight", [c["types"], h]),
        ("embeddings.LayerNorm.weight", [h]),
        ("embeddings.LayerNorm.bias", [h]),
    ]
    for l in range(c["layers"]):
        p = "encoder.layer.%d." % l
        for part in ("query", "key", "value"):
            table += [(p + "attention.self.%s.weight" % part, [h, h]),
                      (p + "attention.self.%s.bias" % part, [h])]
        table += [
            (p + "attention.output.dense.weight", [h, h]),
            (p + "attention.output.dense.bias", [h]),
            (p + "attention.output.LayerNorm.weight", [h]),
            (p + "attention.output.LayerNorm.bias", [h]),
            (p + "intermediate.dense.weight", [i, h]),
            (p + "intermediate.dense.bias", [i]),
            (p + "output.dense.weight", [h, i]),
            (p + "output.dense.bias", [h]),
            (p + "output.LayerNorm.weight", [h]),
            (p + "output.LayerNorm.bias", [h]),
        ]
    if pooler:
        table += [("pooler.dense.weight", [h, h]), ("pooler.dense.bias", [h])]
    return table


def encode_values(dtype, values):
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    out = b""
    for v in values:
        f32 = struct.unpack("<I", struct.pack("<f", v))[0]
        if dtype == "BF16":
            out += struct.pack("<H", f32 >> 16)
        else:  # F16
            out += struct.pack("<e", v)
    return out


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, values)] → bytes, as safetensors writes
    them: names sorted, header padded with spaces to a multiple of 8."""
    header = {}
    blobs = b""
    for name, dtype, shape, values in sorted(tensors):
        data = encode_values(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blobs), len(blobs) + len(data)]}
        blobs += data
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blobs


def checkpoint(dtype="F32", prefix="", pooler=False):
    tensors = []
    for k, (name, shape) in enumerate(weight_table(TINY, pooler)):
        n = 1
        for d in shape:
            n *= d
        values = [((k * 7 + j * 3) % 11 - 5) / 8.0 for j in range(n)]
        tensors.append((prefix + name, dtype, shape, values))
    return safetensors(tensors, {"format": "pt"})


def safetensors_seeds():
    write("safetensors", "tiny_f32", checkpoint())
    write("safetensors", "tiny_f16", checkpoint("F16"))
    write("safetensors", "tiny_bf16_bert_prefix_pooler",
          checkpoint("BF16", "bert.", True))
    write("safetensors", "one_tensor",
          safetensors([("x", "F32", [2, 3], [0.5] * 6)]))
    write("safetensors", "other_dtypes",
          safetensors([("i", "F32", [1], [1.0]), ("e", "F32", [0, 4], [])]))
    write("safetensors", "metadata_only", safetensors([], {"format": "pt"}))
    write("safetensors", "empty_header", safetensors([]))


# ---- config.json -----------------------------------------------------------
def config_seeds():
    write("config", "tiny_bert", read(DATA, "tiny_bert", "config.json"))
    write("config", "tiny_bert_f16", read(DATA, "tiny_bert_f16", "config.json"))
    base = json.loads(read(DATA, "tiny_bert", "config.json"))
    bert_base = dict(base, hidden_size=768, intermediate_size=3072,
                     num_attention_heads=12, num_hidden_layers=12,
                     max_position_embeddings=512, vocab_size=30522)
    write("config", "bert_base", json.dumps(bert_base, indent=2))
    minimal = {k: base[k] for k in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings")}
    write("config", "minimal", json.dumps(minimal))
    write("config", "refused_act", json.dumps(dict(minimal, hidden_act="relu")))


# ---- tokenizer text --------------------------------------------------------
def tokenizer_text_seeds():
    inputs = json.loads(read(DATA, "tokenizer", "inputs.json"))
    def field(case, key):
        if key + "_hex" in case:
            return bytes.fromhex(case[key + "_hex"])
        return case.get(key, "").encode("utf-8", "surrogatepass")

    for k, case in enumerate(inputs):
        if "text" not in case and "text_hex" not in case:
            continue  # generated cases ("random": a seed, not a text)
        text = field(case, "text")
        pair = field(case, "text_pair")
        lower = case.get("lower", True)
        truncate = case.get("truncate", k % 3 == 0)
        flags = (1 if lower else 2) | (8 if pair else 0) | (4 if truncate else 0)
        max_length = min(case.get("max_length", 255 if k % 4 else 9), 255)
        body = text + pair
        split = (len(text) * 256 + len(body) - 1) // len(body) if body else 0
        write("tokenizer_text", "%02d_%s" % (k, case["name"]),
              bytes([flags, max_length, min(split, 255)]) + body)
    write("tokenizer_text", "tiny_vocab",
          bytes([0, 40, 0]) + "the quick brown fox, isn't it?".encode())


# ---- vocab files -----------------------------------------------------------
def vocab_files_seeds():
    write("vocab_files", "tiny_bert_vocab_txt",
          b"\x00" + read(DATA, "tiny_bert", "vocab.txt"))
    write("vocab_files", "test_vocab_txt",
          b"\x00" + read(DATA, "tokenizer", "vocab.txt"))
    tj = read(DATA, "tokenizer", "json", "tokenizer.json")
    write("vocab_files", "tokenizer_json", b"\x01" + tj)
    write("vocab_files", "tokenizer_json_with_config",
          b"\x02" + tj + b"\x00" + b'{"do_lower_case": true, "strip_accents": null}')


# ---- requests (protoc --encode from text format) ---------------------------
REQUESTS = [
    # (name, flags, message type, text format)
    ("encode_ids", 0, "EncodeRequest",
     'sequences { token_ids: [2, 10, 11, 3] } return_hidden_states: true'),
    ("encode_text_attention", 0, "EncodeRequest",
     'sequences { text: "the cat sat" text_pair: "on the mat" } '
     'attention { layers: [1, 0] heads: [3] stats: true dtype: FLOAT16 } '
     'pooling: POOLING_MEAN normalize: true'),
    ("encode_rollout_query", 0, "EncodeRequest",
     'sequences { text: "hello world" } sequences { token_ids: [2, 5, 6, 7, 3] } '
     'attention { rollout: true omit_maps: false query_positions: [0, 2] } '
     'head_mask { layer: 1 head: 2 } head_mask { layer: 0 head: 0 }'),
    ("encode_small_limits", 4, "EncodeRequest",
     'sequences { text: "a long text that will not fit in the small limits of '
     'the server at all" } truncate: true attention { }'),
    ("encode_no_vocab", 8, "EncodeRequest",
     'model: "tiny_bert" sequences { text: "text without a vocab" }'),
    ("encode_bad_utf8", 0, "EncodeRequest", None),
    ("tokenize", 1, "TokenizeRequest",
     'sequences { text: "Hello, world!" text_pair: "caf\\303\\251" } '
     'sequences { token_ids: [2, 3] } truncate: true'),
    ("rank_heads", 2, "RankHeadsRequest",
     'sequences { text: "the cat sat" } pooling: POOLING_CLS'),
    ("rank_heads_small_passes", 2 | 16, "RankHeadsRequest",
     'sequences { token_ids: [2, 20, 21, 22, 3] token_type_ids: [0, 0, 0, 1, 1] } '
     'sequences { text: "dog" }'),
    ("model_info", 3, "GetModelInfoRequest", 'model: "tiny_bert"'),
]


def request_seeds():
    proto = os.path.join(ROOT, "proto", "attnserve.proto")
    for name, flags, type_name, text in REQUESTS:
        if text is None:
            # text = "ab\xff": protoc refuses to write it, so by hand.
            body = b"\x12\x05\x1a\x03ab\xff"
        else:
            body = subprocess.run(
                ["protoc", "--proto_path=" + os.path.dirname(proto),
                 "--encode=attnserve.v1." + type_name, os.path.basename(proto)],
                input=text.encode(), check=True, capture_output=True).stdout
        write("request", name, bytes([flags, 128]) + body)


def text_bytes(b):
    """bytes as a protobuf text-format string literal."""
    return '"' + "".join("\\%03o" % c for c in b) + '"'


def raw_int64(values):
    return text_bytes(struct.pack("<%dq" % len(values), *values))


def raw_strings(strings):
    out = b""
    for t in strings:
        b = t.encode()
        out += struct.pack("<I", len(b)) + b
    return text_bytes(out)


OIP_REQUESTS = [
    ("ids_hidden_embedding", 0,
     'model_name: "tiny_bert" id: "1" '
     'inputs { name: "input_ids" datatype: "INT64" shape: [2, 4] } '
     'inputs { name: "attention_mask" datatype: "INT64" shape: [2, 4] } '
     'outputs { name: "last_hidden_state" } outputs { name: "embedding" } '
     'parameters { key: "pooling" value { string_param: "mean" } } '
     'raw_input_contents: %s raw_input_contents: %s'
     % (raw_int64([2, 10, 11, 3, 2, 12, 3, 0]), raw_int64([1, 1, 1, 1, 1, 1, 1, 0]))),
    ("text_attentions", 0,
     'inputs { name: "text" datatype: "BYTES" shape: [2] } '
     'outputs { name: "token_ids" } outputs { name: "attentions" } '
     'parameters { key: "attention_layers" value { string_param: "0,1" } } '
     'parameters { key: "attention_heads" value { string_param: "1" } } '
     'parameters { key: "attention_dtype" value { string_param: "FP16" } } '
     'parameters { key: "head_mask" value { string_param: "0:1,1:2" } } '
     'raw_input_contents: %s' % raw_strings(["the cat sat", "a dog"])),
    ("typed_int32_pooler", 0,
     'inputs { name: "input_ids" datatype: "INT32" shape: [1, 5] '
     'contents { int_contents: [2, 20, 21, 22, 3] } } '
     'inputs { name: "token_type_ids" datatype: "INT32" shape: [1, 5] '
     'contents { int_contents: [0, 0, 0, 1, 1] } } '
     'outputs { name: "pooler_output" } outputs { name: "embedding" } '
     'parameters { key: "normalize" value { bool_param: true } }'),
    ("text_pair_truncate_small", 1,
     'inputs { name: "text" datatype: "BYTES" shape: [1, 1] } '
     'inputs { name: "text_pair" datatype: "BYTES" shape: [1, 1] } '
     'parameters { key: "truncate" value { bool_param: true } } '
     'raw_input_contents: %s raw_input_contents: %s'
     % (raw_strings(["a long first segment " * 4]), raw_strings(["and a second one"]))),
    ("text_without_vocab", 2,
     'inputs { name: "text" datatype: "BYTES" shape: [1] } '
     'raw_input_contents: %s' % raw_strings(["no vocab here"])),
]


def oip_seeds():
    proto = os.path.join(ROOT, "proto", "inference.proto")
    for name, flags, text in OIP_REQUESTS:
        body = subprocess.run(
            ["protoc", "--proto_path=" + os.path.dirname(proto),
             "--encode=inference.ModelInferRequest", os.path.basename(proto)],
            input=text.encode(), check=True, capture_output=True).stdout
        write("oip_request", name, bytes([flags, 128]) + body)


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    safetensors_seeds()
    config_seeds()
    tokenizer_text_seeds()
    vocab_files_seeds()
    request_seeds()
    oip_seeds()


if __name__ == "__main__":
    main()
