#!/usr/bin/python3
"""Generate random-weight RoBERTa-base and DistilBERT-base for the benchmarks.

The family rows of BENCHMARKS.md: attnserve against ONNX Runtime on the shapes of
roberta-base and distilbert-base-uncased, with random weights, in the same run as BERT-base.

  bench/out/roberta-base/{config.json,model.safetensors}   RobertaModel names (no prefix):
      vocab 50265, hidden 768, 12 layers x 12 heads, FFN 3072, 514 positions, pad 1,
      one token type, GELU (erf), eps 1e-5, pooler
  bench/out/distilbert-base/{config.json,model.safetensors}  DistilBertModel names under
      "distilbert." (as DistilBertForMaskedLM writes them): vocab 30522, dim 768,
      6 layers x 12 heads, hidden_dim 3072, 512 learned positions, GELU, no token types,
      no pooler
  bench/out/roberta-base.onnx, bench/out/distilbert-base.onnx   torch.onnx.export,
      opset 14, int64 inputs input_ids and attention_mask (+ token_type_ids for RoBERTa)
      with dynamic batch and sequence axes; output last_hidden_state

No vocabulary is written: the benchmark sends token ids. The forward pass is
tools/gen_family_golden.py's transcription of transformers' modeling code (the one the
family goldens are made with), wrapped in an nn.Module for the export; before writing,
the float32 module is checked against the same function in float64 on a padded batch.
Nothing here is committed (bench/out/ is ignored). From the repo root, with Debian's
python (python3-torch):

    /usr/bin/python3 bench/make_family_models.py [--out bench/out] [--force]
"""

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import gen_family_golden as fam  # noqa: E402
import gen_golden  # noqa: E402  (write_safetensors, read_safetensors)

SEED = 20261130

ROBERTA_BASE = dict(fam.ROBERTA, architectures=["RobertaModel"], hidden_size=768,
                    intermediate_size=3072, max_position_embeddings=514,
                    num_attention_heads=12, num_hidden_layers=12, vocab_size=50265)
DISTILBERT_BASE = dict(fam.DISTILBERT, activation="gelu", dim=768, hidden_dim=3072,
                       max_position_embeddings=512, n_heads=12, n_layers=6,
                       sinusoidal_pos_embds=False, vocab_size=30522)
MODELS = {
    # name: (family, config, tensor-name prefix in the file, shapes)
    "roberta-base": ("roberta", ROBERTA_BASE, "", fam.shapes_roberta),
    "distilbert-base": ("distilbert", DISTILBERT_BASE, "distilbert.", fam.shapes_distilbert),
}


class FamilyModel(torch.nn.Module):
    """gen_family_golden.encoder_forward over fixed weights, for torch.onnx.export."""

    def __init__(self, family, cfg, w):
        super().__init__()
        self.family, self.cfg = family, cfg
        self.names = sorted(w)
        for i, n in enumerate(self.names):
            self.register_buffer("w%d" % i, w[n])

    def weights(self):
        return {n: getattr(self, "w%d" % i) for i, n in enumerate(self.names)}

    def forward(self, ids, mask, types=None):
        if types is None:
            types = torch.zeros_like(ids)
        hidden, _, _ = fam.encoder_forward(self.family, self.weights(), self.cfg, ids, types,
                                           mask)
        return hidden


def init_weights(shapes, pad):
    """N(0, 0.02) matrices and biases, LayerNorm gains 1 + N(0, 0.02) (as make_bert_base.py:
    the check batch then exercises every bias and gain), a zero padding embedding."""
    g = torch.Generator().manual_seed(SEED)
    w = {}
    for name, shape in sorted(shapes.items()):
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        gain = name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight")
        w[name] = ((1.0 + 0.02 * r) if gain else 0.02 * r).contiguous()
    w["embeddings.word_embeddings.weight"][pad] = 0.0
    return w


def crosscheck(family, cfg, w, model):
    """float32 module against the float64 function on a padded batch of two."""
    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(1000, 30000, (2, 24), generator=g)
    mask = torch.ones(2, 24, dtype=torch.int64)
    mask[1, 16:] = 0
    ids[1, 16:] = cfg["pad_token_id"]
    types = torch.zeros_like(ids)
    with torch.inference_mode():
        w64 = {k: v.to(torch.float64) for k, v in w.items()}
        ref, _, _ = fam.encoder_forward(family, w64, cfg, ids, types, mask)
        got = model(ids, mask, types) if family != "distilbert" else model(ids, mask)
    d = float((got.to(torch.float64) - ref)[mask.bool()].abs().max())
    assert d < 1e-4, "%s: float32 module vs float64 reference %g" % (family, d)
    print("%s: float32 module vs float64 reference %.2g" % (family, d))


def make(name, out, force):
    family, cfg, prefix, shapes_fn = MODELS[name]
    mdir = os.path.join(out, name)
    onnx_path = os.path.join(out, name + ".onnx")
    st = os.path.join(mdir, "model.safetensors")
    if not force and all(os.path.exists(p) for p in (st, onnx_path,
                                                     os.path.join(mdir, "config.json"))):
        print("%s present in %s (use --force to regenerate)" % (name, out))
        return
    os.makedirs(mdir, exist_ok=True)
    w = init_weights(shapes_fn(cfg), cfg["pad_token_id"])
    model = FamilyModel(family, cfg, w).eval()
    crosscheck(family, cfg, w, model)

    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    gen_golden.write_safetensors(st, {prefix + k: v for k, v in w.items()}, "F32")
    back = gen_golden.read_safetensors(st)
    assert sorted(back) == sorted(prefix + k for k in w), "tensor names differ on re-read"
    print("wrote %s: %d tensors, %.1f MB" % (st, len(w), os.path.getsize(st) / 1e6))

    ids = torch.full((2, 16), 1000, dtype=torch.int64)
    mask = torch.ones(2, 16, dtype=torch.int64)
    axes = {"batch": 0, "sequence": 1}
    inputs, names = (ids, mask), ["input_ids", "attention_mask"]
    if family != "distilbert":
        inputs, names = (ids, mask, torch.zeros_like(ids)), names + ["token_type_ids"]
    dyn = {n: {v: k for k, v in axes.items()} for n in names}
    dyn["last_hidden_state"] = {0: "batch", 1: "sequence"}
    torch.onnx.export(model, inputs, onnx_path, input_names=names,
                      output_names=["last_hidden_state"], dynamic_axes=dyn,
                      opset_version=14, do_constant_folding=True)
    print("wrote %s: %.1f MB" % (onnx_path, os.path.getsize(onnx_path) / 1e6))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of " +
                    ", ".join(MODELS))
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    for name in args.models.split(","):
        make(name, args.out, args.force)


if __name__ == "__main__":
    main()
