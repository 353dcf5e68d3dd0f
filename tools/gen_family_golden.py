#!/usr/bin/python3
"""Generate the tiny RoBERTa, DistilBERT and ELECTRA fixtures and their goldens.

The sibling of tools/gen_golden.py (BERT) for the other encoder families. Each model is a
tiny random checkpoint with odd shapes, written as a Hugging Face model directory
(config.json, model.safetensors), with reference outputs computed in float64 by a plain
PyTorch forward written here from transformers' modeling code (RobertaModel,
DistilBertModel, ElectraModel; transformers itself is not installed on this machine, so
the reference is a transcription, as gen_golden.py's BERT is), sharing no code with
attnserve.

Run at development time only (NOT in CI; CI reads the committed files), from the repo
root, with Debian's python3 (python3-torch, numpy):

    /usr/bin/python3 tools/gen_family_golden.py

Deterministic (fixed seeds, sorted tensors, fixed JSON): re-running gives identical files.

Output directories (under tests/data/), each with config.json, model.safetensors,
golden.json (gen_golden.py's "attnserve-golden-v1" layout) and, for RoBERTa and
DistilBERT, golden_head_mask.json (its head-mask layout):

  tiny_roberta/     model_type roberta: vocab 61, hidden 36, 3 heads (of 12), 2 layers,
                    intermediate 52, max_position_embeddings 42 with pad_token_id 1 (so at
                    most 40 tokens: positions start at pad_token_id + 1 = 2), one token
                    type, GELU erf, eps 1e-5, pooler. Names as RobertaModel writes them.
                    <s>=0 <pad>=1 </s>=2 <unk>=3; pairs are <s> A </s></s> B </s> (all
                    type 0); the "withpad" sequence holds pad ids inside the text, which
                    take position pad_token_id and do not advance the count.
  tiny_distilbert/  model_type distilbert: vocab 57, dim 40, 5 heads (of 8), 3 layers,
                    hidden_dim 72, max_position_embeddings 33, ReLU, sinusoidal_pos_embds
                    (the stored table is the sinusoidal one, as transformers writes it),
                    no token types, no pooler, eps 1e-12 (DistilBERT's fixed value).
                    Names prefixed "distilbert." as DistilBertForMaskedLM writes them,
                    with the MLM head's tensors left in (the loader ignores them).
  tiny_electra/     model_type electra: vocab 53, embedding_size 16, hidden 24, 2 heads (of
                    12), 2 layers, intermediate 40, max_position_embeddings 30, 2 token
                    types, gelu_new (tanh GELU), eps 1e-12, embeddings_project 16 -> 24.
                    Names prefixed "electra." as ElectraForPreTraining writes them, with
                    the discriminator head left in.

For models without a pooler, "pooler_output" is an empty array.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_golden import arr, read_safetensors, write_safetensors  # noqa: E402

OUT_ROOT = os.path.join("tests", "data")

ROBERTA = {
    "architectures": ["RobertaModel"],
    "attention_probs_dropout_prob": 0.1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 36,
    "initializer_range": 0.02,
    "intermediate_size": 52,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 42,
    "model_type": "roberta",
    "num_attention_heads": 3,
    "num_hidden_layers": 2,
    "pad_token_id": 1,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "transformers_version": "4.40.0",
    "type_vocab_size": 1,
    "use_cache": True,
    "vocab_size": 61,
}

DISTILBERT = {
    "activation": "relu",
    "architectures": ["DistilBertForMaskedLM"],
    "attention_dropout": 0.1,
    "dim": 40,
    "dropout": 0.1,
    "hidden_dim": 72,
    "initializer_range": 0.02,
    "max_position_embeddings": 33,
    "model_type": "distilbert",
    "n_heads": 5,
    "n_layers": 3,
    "pad_token_id": 0,
    "qa_dropout": 0.1,
    "seq_classif_dropout": 0.2,
    "sinusoidal_pos_embds": True,
    "tie_weights_": True,
    "torch_dtype": "float32",
    "transformers_version": "4.40.0",
    "vocab_size": 57,
}

ELECTRA = {
    "architectures": ["ElectraForPreTraining"],
    "attention_probs_dropout_prob": 0.1,
    "embedding_size": 16,
    "hidden_act": "gelu_new",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 24,
    "initializer_range": 0.02,
    "intermediate_size": 40,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 30,
    "model_type": "electra",
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "transformers_version": "4.40.0",
    "type_vocab_size": 2,
    "vocab_size": 53,
}


# --------------------------------------------------------------------------- weights

def bert_layer_shapes(prefix, H, I):
    s = {}
    for n in ("query", "key", "value"):
        s[prefix + "attention.self.%s.weight" % n] = (H, H)
        s[prefix + "attention.self.%s.bias" % n] = (H,)
    s[prefix + "attention.output.dense.weight"] = (H, H)
    s[prefix + "attention.output.dense.bias"] = (H,)
    s[prefix + "attention.output.LayerNorm.weight"] = (H,)
    s[prefix + "attention.output.LayerNorm.bias"] = (H,)
    s[prefix + "intermediate.dense.weight"] = (I, H)
    s[prefix + "intermediate.dense.bias"] = (I,)
    s[prefix + "output.dense.weight"] = (H, I)
    s[prefix + "output.dense.bias"] = (H,)
    s[prefix + "output.LayerNorm.weight"] = (H,)
    s[prefix + "output.LayerNorm.bias"] = (H,)
    return s


def shapes_roberta(c):
    V, H, I, P = c["vocab_size"], c["hidden_size"], c["intermediate_size"], \
        c["max_position_embeddings"]
    s = {
        "embeddings.word_embeddings.weight": (V, H),
        "embeddings.position_embeddings.weight": (P, H),
        "embeddings.token_type_embeddings.weight": (c["type_vocab_size"], H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
        "pooler.dense.weight": (H, H),
        "pooler.dense.bias": (H,),
    }
    for i in range(c["num_hidden_layers"]):
        s.update(bert_layer_shapes("encoder.layer.%d." % i, H, I))
    return s


def shapes_distilbert(c):
    V, H, I, P = c["vocab_size"], c["dim"], c["hidden_dim"], c["max_position_embeddings"]
    s = {
        "embeddings.word_embeddings.weight": (V, H),
        "embeddings.position_embeddings.weight": (P, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }
    for i in range(c["n_layers"]):
        p = "transformer.layer.%d." % i
        for n in ("q_lin", "k_lin", "v_lin", "out_lin"):
            s[p + "attention.%s.weight" % n] = (H, H)
            s[p + "attention.%s.bias" % n] = (H,)
        s[p + "sa_layer_norm.weight"] = (H,)
        s[p + "sa_layer_norm.bias"] = (H,)
        s[p + "ffn.lin1.weight"] = (I, H)
        s[p + "ffn.lin1.bias"] = (I,)
        s[p + "ffn.lin2.weight"] = (H, I)
        s[p + "ffn.lin2.bias"] = (H,)
        s[p + "output_layer_norm.weight"] = (H,)
        s[p + "output_layer_norm.bias"] = (H,)
    return s


def shapes_electra(c):
    V, E, H, I, P = c["vocab_size"], c["embedding_size"], c["hidden_size"], \
        c["intermediate_size"], c["max_position_embeddings"]
    s = {
        "embeddings.word_embeddings.weight": (V, E),
        "embeddings.position_embeddings.weight": (P, E),
        "embeddings.token_type_embeddings.weight": (c["type_vocab_size"], E),
        "embeddings.LayerNorm.weight": (E,),
        "embeddings.LayerNorm.bias": (E,),
        "embeddings_project.weight": (H, E),
        "embeddings_project.bias": (H,),
    }
    for i in range(c["num_hidden_layers"]):
        s.update(bert_layer_shapes("encoder.layer.%d." % i, H, I))
    return s


def init_weights(shapes, seed):
    """Weights N(0, 0.2), LayerNorm weights 1 + N(0, 0.1), biases N(0, 0.1); sorted order."""
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in sorted(shapes.items()):
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
            t = 1.0 + 0.1 * r
        elif name.endswith(".bias"):
            t = 0.1 * r
        else:
            t = 0.2 * r
        w[name] = t.contiguous()
    return w


def sinusoidal(n_pos, dim):
    """transformers' create_sinusoidal_embeddings, in float64 then float32."""
    enc = torch.tensor([[pos / math.pow(10000, 2 * (j // 2) / dim) for j in range(dim)]
                        for pos in range(n_pos)], dtype=torch.float64)
    out = torch.zeros(n_pos, dim, dtype=torch.float64)
    out[:, 0::2] = torch.sin(enc[:, 0::2])
    out[:, 1::2] = torch.cos(enc[:, 1::2])
    return out.to(torch.float32)


# --------------------------------------------------------------------------- forward

def gelu_tanh(x):  # transformers' NewGELUActivation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACT = {"gelu": F.gelu, "gelu_new": gelu_tanh, "relu": F.relu}


def roberta_position_ids(ids, pad):
    """transformers' create_position_ids_from_input_ids (past length 0)."""
    mask = ids.ne(pad).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + pad


def encoder_forward(family, w, c, ids, type_ids, mask=None, head_mask=None):
    """One forward of `family` ("roberta", "distilbert", "electra") in w's dtype.

    ids, type_ids: (B, T); mask: (B, T) 1 = real token, or None; head_mask: (L, NH) with
    1 = head off (probs of that head multiplied by 0 before .V), or None. Returns (hidden
    (B,T,H), per-layer probs (B,NH,T,T) before head masking, pooled (B,H) or None)."""
    B, T = ids.shape
    dt = w["embeddings.word_embeddings.weight"].dtype
    if family == "distilbert":
        H, NH, L = c["dim"], c["n_heads"], c["n_layers"]
        eps, act = 1e-12, ACT[c["activation"]]
    else:
        H, NH, L = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
        eps, act = c["layer_norm_eps"], ACT[c["hidden_act"]]
    dh = H // NH

    def ln(x, prefix, width=H):
        return F.layer_norm(x, (width,), w[prefix + ".weight"], w[prefix + ".bias"], eps)

    def lin(x, prefix):
        return x @ w[prefix + ".weight"].t() + w[prefix + ".bias"]

    # Embeddings.
    if family == "roberta":
        pos = roberta_position_ids(ids, c["pad_token_id"])
    else:
        pos = torch.arange(T)[None, :].expand(B, T)
    x = w["embeddings.word_embeddings.weight"][ids] + \
        w["embeddings.position_embeddings.weight"][pos]
    if family != "distilbert":
        x = x + w["embeddings.token_type_embeddings.weight"][type_ids]
    E = c.get("embedding_size", H)  # a Python int: torch.onnx.export needs it constant
    x = ln(x, "embeddings.LayerNorm", E)
    if family == "electra" and "embeddings_project.weight" in w:
        x = lin(x, "embeddings_project")

    add_mask = None
    if mask is not None:
        add_mask = (1.0 - mask.to(dt))[:, None, None, :] * torch.finfo(dt).min

    def split(t):
        return t.view(B, T, NH, dh).permute(0, 2, 1, 3)

    attentions = []
    for i in range(L):
        if family == "distilbert":
            p = "transformer.layer.%d." % i
            names = dict(q=p + "attention.q_lin", k=p + "attention.k_lin",
                         v=p + "attention.v_lin", o=p + "attention.out_lin",
                         ln1=p + "sa_layer_norm", f1=p + "ffn.lin1", f2=p + "ffn.lin2",
                         ln2=p + "output_layer_norm")
        else:
            p = "encoder.layer.%d." % i
            names = dict(q=p + "attention.self.query", k=p + "attention.self.key",
                         v=p + "attention.self.value", o=p + "attention.output.dense",
                         ln1=p + "attention.output.LayerNorm", f1=p + "intermediate.dense",
                         f2=p + "output.dense", ln2=p + "output.LayerNorm")
        q = split(lin(x, names["q"]))
        k = split(lin(x, names["k"]))
        v = split(lin(x, names["v"]))
        if family == "distilbert":
            scores = (q / math.sqrt(dh)) @ k.transpose(-1, -2)  # DistilBERT scales q first
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        if add_mask is not None:
            scores = scores + add_mask
        probs = torch.softmax(scores, dim=-1)
        attentions.append(probs)
        if head_mask is not None:
            probs = probs * (1 - head_mask[i]).to(dt)[None, :, None, None]
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, H)
        x = ln(lin(ctx, names["o"]) + x, names["ln1"])
        x = ln(lin(act(lin(x, names["f1"])), names["f2"]) + x, names["ln2"])

    pooled = None
    if "pooler.dense.weight" in w:
        pooled = torch.tanh(lin(x[:, 0, :], "pooler.dense"))
    return x, attentions, pooled


# --------------------------------------------------------------------------- inputs

def make_sequences(family, c, seed):
    g = torch.Generator().manual_seed(seed)
    V, P = c["vocab_size"], c["max_position_embeddings"]
    if family == "roberta":
        bos, eos, first, pad = 0, 2, 4, c["pad_token_id"]
        longest = P - pad - 1
    else:
        bos, eos, first, pad = 2, 3, 5, c["pad_token_id"]  # [CLS] [SEP] as in BERT vocabs
        longest = P

    def rand_ids(n):
        return torch.randint(first, V, (n,), generator=g).tolist()

    seqs = []
    for T in (1, 5, 12, 23, longest):
        ids = [bos] if T == 1 else [bos] + rand_ids(T - 2) + [eos]
        seqs.append(("len%d" % T, ids, [0] * T))
    a, b = rand_ids(3), rand_ids(3)
    if family == "roberta":  # <s> A </s></s> B </s>, one token type
        ids = [bos] + a + [eos, eos] + b + [eos]
        seqs.append(("pair10", ids, [0] * len(ids)))
        # Pad ids inside the sequence: position pad_token_id, not counted.
        ids = [bos] + rand_ids(2) + [pad] + rand_ids(2) + [pad, eos]
        seqs.append(("withpad8", ids, [0] * len(ids)))
    elif family == "distilbert":  # no token types: a pair is all type 0
        ids = [bos] + a + [eos] + b + [eos]
        seqs.append(("pair9", ids, [0] * len(ids)))
    else:
        ids = [bos] + a + [eos] + b + [eos]
        seqs.append(("pair9", ids, [0] * 5 + [1] * 4))
    return seqs


# --------------------------------------------------------------------------- goldens

def one(family, wd, c, ids, types, head_mask=None):
    hid, att, pooled = encoder_forward(family, wd, c, torch.tensor([ids]),
                                       torch.tensor([types]), head_mask=head_mask)
    return hid[0], torch.stack([a[0] for a in att]), \
        (pooled[0] if pooled is not None else None), hid[0].mean(dim=0)


def entry(name, ids, types, hid, att, pooled, mean):
    return {
        "name": name,
        "length": len(ids),
        "token_ids": list(ids),
        "token_type_ids": list(types),
        "last_hidden_state": arr(hid),
        "attentions": arr(att),
        "pooler_output": arr(pooled) if pooled is not None else {"shape": [0], "data": []},
        "mean_pooled": arr(mean),
    }


def compute_golden(family, w32, c, seqs):
    wd = {k: v.to(torch.float64) for k, v in w32.items()}
    alone = [one(family, wd, c, ids, types) for _, ids, types in seqs]
    # The reference checked against itself: one right-padded batch with a mask (for
    # RoBERTa this also exercises the position ids of padding) equals each alone.
    B, Tm = len(seqs), max(len(s[1]) for s in seqs)
    pad = c["pad_token_id"]
    ids_b = torch.full((B, Tm), pad, dtype=torch.int64)
    typ_b = torch.zeros(B, Tm, dtype=torch.int64)
    msk_b = torch.zeros(B, Tm, dtype=torch.int64)
    for b, (_, ids, types) in enumerate(seqs):
        ids_b[b, :len(ids)] = torch.tensor(ids)
        typ_b[b, :len(ids)] = torch.tensor(types)
        msk_b[b, :len(ids)] = 1
    hid_b, att_b, _ = encoder_forward(family, wd, c, ids_b, typ_b, msk_b)
    worst = 0.0
    for b, (name, ids, _) in enumerate(seqs):
        T = len(ids)
        d = max(float((hid_b[b, :T] - alone[b][0]).abs().max()),
                float((torch.stack([a[b] for a in att_b])[:, :, :T, :T] - alone[b][1])
                      .abs().max()))
        assert d < 1e-9, "%s %s: padded batch differs from alone: %g" % (family, name, d)
        worst = max(worst, d)
    out = [entry(name, ids, types, *res) for (name, ids, types), res in zip(seqs, alone)]
    return out, worst


def head_mask_cases(L, NH):
    cases = []
    m = torch.zeros(L, NH, dtype=torch.int64)
    m[0, 1] = 1
    cases.append(("layer0_head1", m))
    m = torch.zeros(L, NH, dtype=torch.int64)
    m[1, :] = 1
    cases.append(("layer1_all", m))
    cases.append(("all_heads", torch.ones(L, NH, dtype=torch.int64)))
    return cases


def write_head_mask_golden(dirname, family, w32, c, seqs, L, NH, pick):
    wd = {k: v.to(torch.float64) for k, v in w32.items()}
    cases = []
    for name, m in head_mask_cases(L, NH):
        out = []
        for sname, ids, types in seqs:
            if sname not in pick:
                continue
            out.append(entry(sname, ids, types, *one(family, wd, c, ids, types, m)))
        cases.append({"name": name, "head_mask": arr(m.to(torch.float32)) | {
            "data": [int(v) for v in m.reshape(-1).tolist()]}, "sequences": out})
    doc = {"format": "attnserve-golden-head-mask-v1", "generator": "tools/gen_family_golden.py",
           "reference_precision": "float64", "config": c, "cases": cases}
    with open(os.path.join(dirname, "golden_head_mask.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def write_model(name, family, c, shapes, seed, prefix, extra, head_mask):
    dirname = os.path.join(OUT_ROOT, name)
    os.makedirs(dirname, exist_ok=True)
    w32 = init_weights(shapes, seed)
    if family == "distilbert" and c.get("sinusoidal_pos_embds"):
        w32["embeddings.position_embeddings.weight"] = sinusoidal(
            c["max_position_embeddings"], c["dim"])
    stored = {prefix + k: v for k, v in w32.items()}
    stored.update(init_weights(extra, seed + 7))
    path = os.path.join(dirname, "model.safetensors")
    write_safetensors(path, stored, "F32")
    back = read_safetensors(path)
    assert all(torch.equal(back[k], v) for k, v in stored.items())
    with open(os.path.join(dirname, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    seqs = make_sequences(family, c, seed + 1)
    golden, worst = compute_golden(family, w32, c, seqs)
    doc = {"format": "attnserve-golden-v1", "generator": "tools/gen_family_golden.py",
           "family": family, "weights_dtype": "F32", "tensor_prefix": prefix,
           "reference_precision": "float64", "config": c,
           "batch_check_max_abs_diff": worst, "sequences": golden}
    with open(os.path.join(dirname, "golden.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    if head_mask:
        L = c.get("num_hidden_layers", c.get("n_layers"))
        NH = c.get("num_attention_heads", c.get("n_heads"))
        pick = [s[0] for s in seqs if s[0] in ("len5", "len12")] + [seqs[5][0]]
        write_head_mask_golden(dirname, family, w32, c, seqs, L, NH, pick)
    print("%s: %d sequences, padded-batch check %.2g" % (dirname, len(seqs), worst))


def main():
    torch.set_num_threads(1)  # deterministic float64 sums: byte-identical reruns
    write_model("tiny_roberta", "roberta", ROBERTA, shapes_roberta(ROBERTA), 1511, "", {},
                head_mask=True)
    write_model("tiny_distilbert", "distilbert", DISTILBERT, shapes_distilbert(DISTILBERT),
                2022, "distilbert.",
                {"vocab_projector.bias": (DISTILBERT["vocab_size"],),
                 "vocab_transform.weight": (DISTILBERT["dim"], DISTILBERT["dim"]),
                 "vocab_transform.bias": (DISTILBERT["dim"],),
                 "vocab_layer_norm.weight": (DISTILBERT["dim"],),
                 "vocab_layer_norm.bias": (DISTILBERT["dim"],)},
                head_mask=True)
    write_model("tiny_electra", "electra", ELECTRA, shapes_electra(ELECTRA), 3033, "electra.",
                {"discriminator_predictions.dense.weight": (24, 24),
                 "discriminator_predictions.dense.bias": (24,),
                 "discriminator_predictions.dense_prediction.weight": (1, 24),
                 "discriminator_predictions.dense_prediction.bias": (1,)},
                head_mask=False)


if __name__ == "__main__":
    main()
