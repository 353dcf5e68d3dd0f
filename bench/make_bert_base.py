#!/usr/bin/python3
"""Generate the random-weight BERT-base used by the benchmarks.

bert-base-uncased shapes (vocab 30522, hidden 768, 12 layers, 12 heads, FFN 3072,
512 positions, 2 token types), random weights from a fixed seed, written as:

  bench/out/bert-base/config.json          BertConfig fields
  bench/out/bert-base/model.safetensors    F32, Hugging Face BertModel tensor names
  bench/out/bert-base/vocab.txt            30522 lines (synthetic WordPiece vocabulary)
  bench/out/bert-base.onnx                 torch.onnx.export, opset 14, inputs
                                           input_ids, attention_mask, token_type_ids
                                           (int64, dynamic batch and sequence axes),
                                           outputs last_hidden_state, pooler_output

Nothing here is committed (bench/out/ is ignored); this script regenerates it in
about a minute. Run from the repo root with Debian's python (python3-torch,
numpy; no transformers or safetensors needed):

    /usr/bin/python3 bench/make_bert_base.py [--out bench/out] [--force]

Weights: every matrix and embedding N(0, 0.02) (BERT's initializer_range).
Unlike a fresh BertModel, biases are N(0, 0.02) and LayerNorm gains 1 + N(0, 0.02)
rather than exactly 0 and 1, so the output checks against the baselines also
exercise every bias and gain. The [PAD] rows of the embeddings are zero, as in BERT.

Before writing, the nn.Module in bench/bert_torch.py is checked against the
independent functional reference in tools/gen_golden.py (float64, a padded batch
of two sequences, to 1e-9), and the written safetensors file is re-read and
compared bit for bit.
"""

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import bert_torch  # noqa: E402
import gen_golden  # noqa: E402  (write_safetensors, weight_shapes, bert_forward)

SEED = 20240612
CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "transformers_version": "4.40.0",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}


def make_vocab(n):
    """bert-base-uncased's layout of special ids ([PAD]=0, [UNK]=100, [CLS]=101,
    [SEP]=102, [MASK]=103, [unusedN] elsewhere below 999), then single characters,
    their ## continuations, and synthetic lowercase words up to n entries."""
    v = ["[PAD]"] + ["[unused%d]" % i for i in range(99)]
    v += ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    v += ["[unused%d]" % i for i in range(99, 99 + 999 - len(v))]
    chars = list("!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")
    v += chars + ["##" + c for c in chars if c.isalnum()]
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = 0
    seen = set(v)
    while len(v) < n:
        # base-26 words of 2+ letters: aa, ab, ..., then ##-continuations of them.
        k, w = i + 26 * 27, ""
        while k:
            k, r = divmod(k, 26)
            w = letters[r] + w
        for cand in (w, "##" + w):
            if len(v) < n and cand not in seen:
                seen.add(cand)
                v.append(cand)
        i += 1
    assert len(v) == n and len(set(v)) == n
    assert v[0] == "[PAD]" and v[100] == "[UNK]" and v[101] == "[CLS]" and v[102] == "[SEP]"
    return v


def init_weights(cfg):
    """float32 weights drawn in sorted-name order from one generator."""
    g = torch.Generator().manual_seed(SEED)
    std = cfg["initializer_range"]
    w = {}
    for name, shape in sorted(gen_golden.weight_shapes(cfg).items()):
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("LayerNorm.weight"):
            t = 1.0 + std * r
        else:
            t = std * r
        if name in ("embeddings.word_embeddings.weight",):
            t[cfg["pad_token_id"]] = 0.0
        w[name] = t.contiguous()
    return w


def crosscheck(model, w, cfg):
    """The nn.Module against gen_golden.bert_forward in float64 on a padded batch."""
    m64 = bert_torch.Bert(cfg).to(torch.float64).eval()
    m64.load_state_dict({k: v.to(torch.float64) for k, v in w.items()}, strict=True)
    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(1000, cfg["vocab_size"], (2, 24), generator=g)
    ids[:, 0] = 101
    ids[0, 23] = 102
    ids[1, 15] = 102
    ids[1, 16:] = 0
    mask = torch.ones(2, 24, dtype=torch.int64)
    mask[1, 16:] = 0
    types = torch.zeros(2, 24, dtype=torch.int64)
    types[0, 12:] = 1
    with torch.inference_mode():
        h1, p1 = m64(ids, mask, types)
        wd = {k: v.to(torch.float64) for k, v in w.items()}
        h2, _, p2 = gen_golden.bert_forward(wd, cfg, ids, types, mask)
        h3, p3 = model(ids, mask, types)  # the float32 model that is exported
    d = max(float((h1 - h2).abs().max()), float((p1 - p2).abs().max()))
    assert d < 1e-9, "bert_torch vs gen_golden.bert_forward: %g" % d
    d32 = float((h3.to(torch.float64) - h1).abs().max())
    assert d32 < 1e-4, "float32 vs float64: %g" % d32
    print("cross-check: module vs functional reference (f64) %.2g, f32 vs f64 %.2g" % (d, d32))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args()

    mdir = os.path.join(args.out, "bert-base")
    onnx_path = os.path.join(args.out, "bert-base.onnx")
    files = [os.path.join(mdir, f) for f in ("config.json", "model.safetensors", "vocab.txt")]
    if not args.force and all(os.path.exists(f) for f in files + [onnx_path]):
        print("model present in %s (use --force to regenerate)" % args.out)
        return
    os.makedirs(mdir, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    cfg = CONFIG

    w = init_weights(cfg)
    model = bert_torch.Bert(cfg).eval()
    model.load_state_dict(w, strict=True)
    crosscheck(model, w, cfg)

    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(mdir, "vocab.txt"), "w") as f:
        f.write("\n".join(make_vocab(cfg["vocab_size"])) + "\n")
    st = os.path.join(mdir, "model.safetensors")
    gen_golden.write_safetensors(st, w, "F32")
    back = bert_torch.read_safetensors(st)
    assert sorted(back) == sorted(w)
    for k, v in w.items():
        assert torch.equal(back[k], v), k
    nbytes = sum(v.numel() * 4 for v in w.values())
    print("wrote %s: %d tensors, %.1f M parameters, %.1f MB"
          % (st, len(w), nbytes / 4e6, os.path.getsize(st) / 1e6))

    ids = torch.full((2, 16), 1000, dtype=torch.int64)
    mask = torch.ones(2, 16, dtype=torch.int64)
    types = torch.zeros(2, 16, dtype=torch.int64)
    torch.onnx.export(
        model, (ids, mask, types), onnx_path,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state", "pooler_output"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "token_type_ids": {0: "batch", 1: "sequence"},
            "last_hidden_state": {0: "batch", 1: "sequence"},
            "pooler_output": {0: "batch"},
        },
        opset_version=14, do_constant_folding=True)
    print("wrote %s: %.1f MB" % (onnx_path, os.path.getsize(onnx_path) / 1e6))


if __name__ == "__main__":
    main()
