#!/usr/bin/python3
"""Generate the tiny-BERT test fixtures and their golden outputs.

Builds a tiny random BERT in plain PyTorch (written independently of attnserve, following
Hugging Face's BertModel exactly: post-LN, GELU erf, tanh pooler), writes it as a Hugging
Face model directory (config.json, model.safetensors written by hand, vocab.txt), and
computes reference outputs in float64 for a fixed set of token sequences, so the C++ tests
can compare attnserve's encoder against an implementation that shares no code with it.

Run at development time only (NOT in CI; CI just reads the committed files), from the repo
root, with Debian's python3 (it sees python3-torch and numpy; no transformers/safetensors):

    /usr/bin/python3 tools/gen_golden.py

Deterministic: fixed seeds, sorted tensors, fixed JSON formatting; running it twice gives
byte-identical files.

Output directories (under tests/data/):
  tiny_bert/                 F32 weights, names as BertModel.save_pretrained writes them.
  tiny_bert_f16/             the same weights rounded to F16 (torch_dtype "float16").
  tiny_bert_bf16_prefixed/   the same weights rounded to BF16, every name prefixed "bert."
                             (as in BertForMaskedLM-style checkpoints; torch_dtype "bfloat16").
Each holds config.json, model.safetensors, vocab.txt and golden.json. The goldens of the
f16/bf16 directories are computed from the weights *after* rounding to that dtype (and
converting back to float32 exactly), so a loader that converts to f32 at load sees exactly
the reference's weights.

golden.json layout (all floats are float32 values written in their shortest round-trip
decimal form; parse as double and cast to float, or with strtof; all arrays are flat,
row-major / C order, with "shape" giving the dimensions):

{
  "format": "attnserve-golden-v1",
  "generator": "tools/gen_golden.py",
  "weights_dtype": "F32" | "F16" | "BF16",
  "tensor_prefix": "" | "bert.",
  "reference_precision": "float64",
  "config": {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 64,
             "max_position_embeddings": 40, "type_vocab_size": 2,
             "layer_norm_eps": 1e-12},
  "batch_check_max_abs_diff": <float: worst |padded batch - alone| over all outputs>,
  "sequences": [                         # 6 entries, in this order:
    {                                    #   len1, len5, len12, len23, len40, pair9
      "name": "len5",
      "length": T,
      "token_ids": [T ints],             # [CLS]=2 first, [SEP]=3 last
      "token_type_ids": [T ints],        # all 0, except pair9: 0 x5 then 1 x4
      "last_hidden_state": {"shape": [T, H], "data": [T*H floats]},
      "attentions": {"shape": [L, NH, T, T], "data": [L*NH*T*T floats]},
                                         # softmax probs [layer][head][query][key]
      "pooler_output": {"shape": [H], "data": [H floats]},  # tanh(W h[0] + b)
      "mean_pooled": {"shape": [H], "data": [H floats]}     # mean of last_hidden_state
    },                                                       # over the T tokens
    ...
  ]
}

tiny_bert/golden_head_mask.json (F32 weights only): the same model with heads switched off
as Hugging Face's head_mask does (Michel et al. 2019): a masked head's attention probs are
multiplied by 0 before .V, i.e. its context is zeroed before the output projection.

{
  "format": "attnserve-golden-head-mask-v1",
  "generator": "tools/gen_golden.py",
  "reference_precision": "float64",
  "config": {...as above...},
  "cases": [                             # 3 entries, in this order:
    {                                    #   layer0_head1, layer1_all, all_heads
      "name": "layer0_head1",
      "head_mask": {"shape": [L, NH], "data": [L*NH ints]},  # 1 = head switched off
      "sequences": [                     # len5, len12, pair9 (as in golden.json)
        {"name", "length", "token_ids", "token_type_ids", "last_hidden_state",
         "attentions", "pooler_output", "mean_pooled"}  # as in golden.json, with the mask;
      ]                                  # attentions are the probs BEFORE masking (so
    }, ...                               # layers up to the first masked one equal
  ]                                      # golden.json's, later layers do not)
}

tiny_bert/golden_pruned.json (F32 weights only): the same layout (format
"attnserve-golden-pruned-v1"), "head_mask" naming the heads PRUNED, as Hugging Face's
prune_heads does it (Debian has no transformers, so prune_weights does the same with plain
tensor ops: the pruned heads' rows of query/key/value weight and bias and their columns of
attention.output.dense.weight are deleted; a layer with no head left adds only the output
bias). Cases: layer 0 heads 1 and 3 + layer 1 head 0; layer 0 head 2 + all of layer 1.
Attentions are (L, NH, T, T) in the original numbering, zeros for pruned heads. The script
checks every pruned output against the unpruned model with those heads in head_mask
(within 1e-12 in float64).

The script checks each masked result against a second construction: the unmasked model
with the masked heads' columns of attention.output.dense.weight set to zero (to 1e-12).

Each sequence is encoded ALONE (no padding). The script also encodes all of them as one
padded batch with an additive attention mask and asserts the results match to 1e-5, and
re-runs the encoder layers through torch.nn.TransformerEncoderLayer / MultiheadAttention
(a second implementation) and asserts hidden states and attention probs match to 1e-10.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240611
CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 40,
    "model_type": "bert",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "transformers_version": "4.40.0",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 99,
}

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    ". , ! ? ' - ( ) : ; "
    "the a an and or but of to in on at by for with from up down over under "
    "is was are were be been has had have do did not no yes "
    "i you he she it we they my your his her its our their this that "
    "cat dog bird fish sat ran run play mat hat sun moon day night "
    "big small red blue green good bad new old hello world "
    "##s ##ing ##ed ##er ##ly ##est ##y ##es ##ness ##ful"
).split()
VOCAB = SPECIAL + WORDS
CLS_ID, SEP_ID = 2, 3

OUT_ROOT = os.path.join("tests", "data")


# --------------------------------------------------------------------------- weights

def weight_shapes(cfg):
    """Tensor names and shapes exactly as BertModel.save_pretrained writes them."""
    V, H, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    P, TV = cfg["max_position_embeddings"], cfg["type_vocab_size"]
    s = {
        "embeddings.word_embeddings.weight": (V, H),
        "embeddings.position_embeddings.weight": (P, H),
        "embeddings.token_type_embeddings.weight": (TV, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % i
        for n in ("query", "key", "value"):
            s[p + "attention.self.%s.weight" % n] = (H, H)
            s[p + "attention.self.%s.bias" % n] = (H,)
        s[p + "attention.output.dense.weight"] = (H, H)
        s[p + "attention.output.dense.bias"] = (H,)
        s[p + "attention.output.LayerNorm.weight"] = (H,)
        s[p + "attention.output.LayerNorm.bias"] = (H,)
        s[p + "intermediate.dense.weight"] = (I, H)
        s[p + "intermediate.dense.bias"] = (I,)
        s[p + "output.dense.weight"] = (H, I)
        s[p + "output.dense.bias"] = (H,)
        s[p + "output.LayerNorm.weight"] = (H,)
        s[p + "output.LayerNorm.bias"] = (H,)
    s["pooler.dense.weight"] = (H, H)
    s["pooler.dense.bias"] = (H,)
    return s


def init_weights(cfg):
    """Random float32 weights: weights N(0, 0.2), LayerNorm weights 1 + N(0, 0.1),
    biases (incl. LayerNorm biases) N(0, 0.1). Drawn in sorted-name order."""
    g = torch.Generator().manual_seed(SEED)
    w = {}
    for name, shape in sorted(weight_shapes(cfg).items()):
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("LayerNorm.weight"):
            t = 1.0 + 0.1 * r
        elif name.endswith(".bias"):
            t = 0.1 * r
        else:
            t = 0.2 * r
        w[name] = t.contiguous()
    return w


def round_to(w, dtype):
    """Round float32 weights to dtype (RNE) and back to float32 (exact)."""
    return {k: v.to(dtype).to(torch.float32) for k, v in w.items()}


# --------------------------------------------------------------------------- model

def bert_forward(w, cfg, ids, type_ids, mask=None, head_mask=None):
    """Plain BERT forward (Hugging Face BertModel semantics, eval mode).

    ids, type_ids: (B, T) int64. mask: (B, T) 1 = real token, 0 = padding, or None.
    head_mask: (L, NH) 1 = head switched off, or None. Hugging Face's head_mask (where
    1 = keep) multiplies the probs by it before .V; here the probs are multiplied by
    (1 - head_mask), the same thing with attnserve's convention.
    w: dict of tensors in the compute dtype. Returns (hidden (B,T,H), attentions list of
    (B,NH,T,T) per layer, pooled (B,H)). The attentions are the probs BEFORE head masking
    (attnserve returns those; Hugging Face's output_attentions returns them masked).
    """
    B, T = ids.shape
    H, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    dh = H // NH
    eps = cfg["layer_norm_eps"]
    dt = w["embeddings.word_embeddings.weight"].dtype

    def ln(x, prefix):
        return F.layer_norm(x, (H,), w[prefix + ".weight"], w[prefix + ".bias"], eps)

    def lin(x, prefix):
        return x @ w[prefix + ".weight"].t() + w[prefix + ".bias"]

    pos = torch.arange(T)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][pos][None, :, :]
         + w["embeddings.token_type_embeddings.weight"][type_ids])
    x = ln(x, "embeddings.LayerNorm")

    if mask is not None:
        add_mask = (1.0 - mask.to(dt))[:, None, None, :] * torch.finfo(dt).min
    else:
        add_mask = None

    def split(t):  # (B,T,H) -> (B,NH,T,dh)
        return t.view(B, T, NH, dh).permute(0, 2, 1, 3)

    attentions = []
    for i in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % i
        q = split(lin(x, p + "attention.self.query"))
        k = split(lin(x, p + "attention.self.key"))
        v = split(lin(x, p + "attention.self.value"))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        if add_mask is not None:
            scores = scores + add_mask
        probs = torch.softmax(scores, dim=-1)
        attentions.append(probs)
        if head_mask is not None:
            keep = (1 - head_mask[i]).to(dt)[None, :, None, None]  # (1, NH, 1, 1)
            ctx = ((probs * keep) @ v).permute(0, 2, 1, 3).reshape(B, T, H)
        else:
            ctx = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, H)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inter = F.gelu(lin(x, p + "intermediate.dense"))  # erf GELU
        x = ln(lin(inter, p + "output.dense") + x, p + "output.LayerNorm")

    pooled = torch.tanh(lin(x[:, 0, :], "pooler.dense"))
    return x, attentions, pooled


# --------------------------------------------------------------------------- inputs

def make_sequences(cfg):
    g = torch.Generator().manual_seed(SEED + 1)
    V = cfg["vocab_size"]

    def rand_ids(n):
        return torch.randint(5, V, (n,), generator=g).tolist()

    seqs = []
    for T in (1, 5, 12, 23, cfg["max_position_embeddings"]):
        ids = [CLS_ID] if T == 1 else [CLS_ID] + rand_ids(T - 2) + [SEP_ID]
        seqs.append(("len%d" % T, ids, [0] * T))
    # Sentence pair of length 9: [CLS] a b c [SEP] d e f [SEP]; types 0 x5 then 1 x4.
    a, b = rand_ids(3), rand_ids(3)
    ids = [CLS_ID] + a + [SEP_ID] + b + [SEP_ID]
    seqs.append(("pair9", ids, [0] * 5 + [1] * 4))
    return seqs


# --------------------------------------------------------------------------- writers

def write_safetensors(path, tensors, dtype):
    """tensors: {name: float32 torch tensor}; dtype: "F32" | "F16" | "BF16"."""
    blobs = {}
    for name, t in tensors.items():
        t = t.contiguous()
        if dtype == "F32":
            b = t.numpy().astype("<f4").tobytes()
        elif dtype == "F16":
            b = t.numpy().astype("<f2").tobytes()
        elif dtype == "BF16":
            b = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raise ValueError(dtype)
        blobs[name] = (list(t.shape), b)
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    data = []
    for name in sorted(blobs):
        shape, b = blobs[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
        data.append(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in data:
            f.write(b)


def read_safetensors(path):
    """Independent re-read (sanity check of the writer)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        b0, b1 = info["data_offsets"]
        buf = raw[base + b0:base + b1]
        if info["dtype"] == "F32":
            a = np.frombuffer(buf, "<f4").astype(np.float32)
        elif info["dtype"] == "F16":
            a = np.frombuffer(buf, "<f2").astype(np.float32)
        elif info["dtype"] == "BF16":
            a = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(info["dtype"])
        out[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
    assert base + max(i["data_offsets"][1] for k, i in hdr.items() if k != "__metadata__") \
        == len(raw)
    return out


def f32_list(t):
    """Flat list of float32 values as Python floats with the shortest decimal that
    round-trips through float32 (keeps the JSON small)."""
    a = t.detach().to(torch.float32).contiguous().numpy().reshape(-1)
    return [float(np.format_float_positional(x, unique=True, trim="-")
                  if abs(x) >= 1e-4 or x == 0 else
                  np.format_float_scientific(x, unique=True, trim="-")) for x in a]


def arr(t):
    return {"shape": list(t.shape), "data": f32_list(t)}


# --------------------------------------------------------------------------- main

def compute_golden(w32, cfg, seqs):
    """w32: float32 weights (already rounded to the variant's dtype). Returns (per-sequence
    golden dicts, max padded-vs-alone diff, per-sequence float64 tensors)."""
    wd = {k: v.to(torch.float64) for k, v in w32.items()}
    L, NH, H = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"]
    alone = []
    for name, ids, types in seqs:
        T = len(ids)
        hid, att, pooled = bert_forward(wd, cfg, torch.tensor([ids]), torch.tensor([types]))
        hid = hid[0]
        att = torch.stack([a[0] for a in att])  # (L, NH, T, T)
        alone.append((hid, att, pooled[0], hid.mean(dim=0)))

    # Validate the reference: one padded batch with an attention mask.
    B = len(seqs)
    Tm = max(len(s[1]) for s in seqs)
    ids_b = torch.zeros(B, Tm, dtype=torch.int64)  # pad id 0
    typ_b = torch.zeros(B, Tm, dtype=torch.int64)
    msk_b = torch.zeros(B, Tm, dtype=torch.int64)
    for b, (_, ids, types) in enumerate(seqs):
        ids_b[b, :len(ids)] = torch.tensor(ids)
        typ_b[b, :len(ids)] = torch.tensor(types)
        msk_b[b, :len(ids)] = 1
    hid_b, att_b, pooled_b = bert_forward(wd, cfg, ids_b, typ_b, msk_b)
    worst = 0.0
    for b, (name, ids, _) in enumerate(seqs):
        T = len(ids)
        hid, att, pooled, mean = alone[b]
        mean_b = (hid_b[b] * msk_b[b, :, None]).sum(0) / msk_b[b].sum()
        att_bb = torch.stack([a[b] for a in att_b])
        # Padded keys must get zero probability.
        assert float(att_bb[:, :, :T, T:].abs().max() if T < Tm else 0.0) == 0.0, name
        diffs = [
            (hid_b[b, :T] - hid).abs().max(),
            (att_bb[:, :, :T, :T] - att).abs().max(),
            (pooled_b[b] - pooled).abs().max(),
            (mean_b - mean).abs().max(),
        ]
        d = max(float(x) for x in diffs)
        assert d < 1e-5, "padded batch differs from alone for %s: %g" % (name, d)
        worst = max(worst, d)

    out = []
    for (name, ids, types), (hid, att, pooled, mean) in zip(seqs, alone):
        T = len(ids)
        assert hid.shape == (T, H) and att.shape == (L, NH, T, T)
        # Attention rows sum to one (checked on the float32 values we store).
        rs = att.to(torch.float32).sum(-1)
        assert float((rs - 1).abs().max()) < 1e-5, name
        out.append({
            "name": name,
            "length": T,
            "token_ids": list(ids),
            "token_type_ids": list(types),
            "last_hidden_state": arr(hid),
            "attentions": arr(att),
            "pooler_output": arr(pooled),
            "mean_pooled": arr(mean),
        })
    return out, worst, alone


def crosscheck_torch_nn(wd, cfg, seqs, alone):
    """Second, independent reference for the encoder layers: torch.nn.TransformerEncoderLayer
    (post-LN, norm_first=False, erf GELU) and nn.MultiheadAttention carry BERT's layer
    exactly once the Q/K/V weights are stacked into in_proj. Checks the hidden states and
    per-head attention probs of our plain forward to 1e-10 (float64)."""
    H, NH, I = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]
    eps = cfg["layer_norm_eps"]
    layers = []
    for i in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % i
        m = torch.nn.TransformerEncoderLayer(H, NH, I, dropout=0.0, activation="gelu",
                                             layer_norm_eps=eps, batch_first=True,
                                             norm_first=False).to(torch.float64).eval()
        with torch.no_grad():
            sa = m.self_attn
            sa.in_proj_weight.copy_(torch.cat([wd[p + "attention.self.%s.weight" % n]
                                               for n in ("query", "key", "value")]))
            sa.in_proj_bias.copy_(torch.cat([wd[p + "attention.self.%s.bias" % n]
                                             for n in ("query", "key", "value")]))
            sa.out_proj.weight.copy_(wd[p + "attention.output.dense.weight"])
            sa.out_proj.bias.copy_(wd[p + "attention.output.dense.bias"])
            m.norm1.weight.copy_(wd[p + "attention.output.LayerNorm.weight"])
            m.norm1.bias.copy_(wd[p + "attention.output.LayerNorm.bias"])
            m.linear1.weight.copy_(wd[p + "intermediate.dense.weight"])
            m.linear1.bias.copy_(wd[p + "intermediate.dense.bias"])
            m.linear2.weight.copy_(wd[p + "output.dense.weight"])
            m.linear2.bias.copy_(wd[p + "output.dense.bias"])
            m.norm2.weight.copy_(wd[p + "output.LayerNorm.weight"])
            m.norm2.bias.copy_(wd[p + "output.LayerNorm.bias"])
        layers.append(m)
    emb = torch.nn.Embedding(cfg["vocab_size"], H).to(torch.float64)
    with torch.no_grad():
        emb.weight.copy_(wd["embeddings.word_embeddings.weight"])
    emb_ln = torch.nn.LayerNorm(H, eps=eps).to(torch.float64)
    with torch.no_grad():
        emb_ln.weight.copy_(wd["embeddings.LayerNorm.weight"])
        emb_ln.bias.copy_(wd["embeddings.LayerNorm.bias"])
    worst = 0.0
    with torch.no_grad():
        for (name, ids, types), (hid, att, pooled, mean) in zip(seqs, alone):
            T = len(ids)
            x = (emb(torch.tensor([ids]))
                 + wd["embeddings.position_embeddings.weight"][:T][None]
                 + wd["embeddings.token_type_embeddings.weight"][torch.tensor([types])])
            x = emb_ln(x)
            for i, m in enumerate(layers):
                _, probs = m.self_attn(x, x, x, need_weights=True,
                                       average_attn_weights=False)
                worst = max(worst, float((probs[0] - att[i]).abs().max()))
                x = m(x)
            worst = max(worst, float((x[0] - hid).abs().max()))
    assert worst < 1e-10, "torch.nn cross-check failed: %g" % worst
    return worst


def attention_spread(golden):
    """Max attention prob across everything (to confirm attention is not uniform)."""
    return max(max(s["attentions"]["data"]) for s in golden if s["length"] > 1)


def write_variant(dirname, w32_orig, cfg, seqs, dtype, prefix, torch_dtype_name):
    d = os.path.join(OUT_ROOT, dirname)
    os.makedirs(d, exist_ok=True)
    if dtype == "F32":
        w = w32_orig
    elif dtype == "F16":
        w = round_to(w32_orig, torch.float16)
    else:
        w = round_to(w32_orig, torch.bfloat16)

    c = dict(cfg)
    c["torch_dtype"] = torch_dtype_name
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    st = os.path.join(d, "model.safetensors")
    write_safetensors(st, {prefix + k: v for k, v in w.items()}, dtype)

    # Re-read and check the stored weights are exactly what the golden uses.
    back = read_safetensors(st)
    assert sorted(back) == sorted(prefix + k for k in w)
    for k, v in w.items():
        assert torch.equal(back[prefix + k], v), k

    golden, worst, alone = compute_golden(w, cfg, seqs)
    xc = crosscheck_torch_nn({k: v.to(torch.float64) for k, v in w.items()}, cfg, seqs, alone)
    doc = {
        "format": "attnserve-golden-v1",
        "generator": "tools/gen_golden.py",
        "weights_dtype": dtype,
        "tensor_prefix": prefix,
        "reference_precision": "float64",
        "config": {k: cfg[k] for k in (
            "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size",
            "layer_norm_eps")},
        "batch_check_max_abs_diff": float("%.3g" % worst),
        "sequences": golden,
    }
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("%-24s %-4s prefix=%-7r batch-vs-alone %.2g, vs torch.nn %.2g, max attn prob %.3f"
          % (dirname, dtype, prefix, worst, xc, attention_spread(golden)))
    return w


HEAD_MASK_SEQUENCES = ("len5", "len12", "pair9")


def head_mask_cases(cfg):
    """(name, (L, NH) int64 mask with 1 = switched off), in golden order."""
    L, NH = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    one = torch.zeros(L, NH, dtype=torch.int64)
    one[0, 1] = 1
    layer = torch.zeros(L, NH, dtype=torch.int64)
    layer[1, :] = 1
    return [("layer0_head1", one), ("layer1_all", layer),
            ("all_heads", torch.ones(L, NH, dtype=torch.int64))]


def write_head_mask_golden(dirname, w32, cfg, seqs):
    """Masked-head goldens for the F32 variant; see the docstring for the layout."""
    wd = {k: v.to(torch.float64) for k, v in w32.items()}
    H, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    dh = H // NH
    chosen = [s for s in seqs if s[0] in HEAD_MASK_SEQUENCES]
    assert [s[0] for s in chosen] == list(HEAD_MASK_SEQUENCES)
    cases = []
    worst = 0.0
    for case, head_mask in head_mask_cases(cfg):
        # Second construction: zero the masked heads' columns of the output projection.
        wz = dict(wd)
        for l, h in head_mask.nonzero().tolist():
            name = "encoder.layer.%d.attention.output.dense.weight" % l
            wz[name] = wz[name].clone()
            wz[name][:, h * dh:(h + 1) * dh] = 0
        out = []
        for name, ids, types in chosen:
            T = len(ids)
            idt, tyt = torch.tensor([ids]), torch.tensor([types])
            hid, att, pooled = bert_forward(wd, cfg, idt, tyt, head_mask=head_mask)
            hid_z, att_z, pooled_z = bert_forward(wz, cfg, idt, tyt)
            _, att_plain, _ = bert_forward(wd, cfg, idt, tyt)
            att = torch.stack([a[0] for a in att])  # (L, NH, T, T) before masking
            att_z = torch.stack([a[0] for a in att_z])
            d = max(float((hid[0] - hid_z[0]).abs().max()),
                    float((att - att_z).abs().max()),
                    float((pooled - pooled_z).abs().max()))
            assert d < 1e-12, "head mask vs zeroed columns differ for %s %s: %g" % (
                case, name, d)
            worst = max(worst, d)
            # Up to and including the first masked layer the maps are the unmasked ones.
            first = int(head_mask.nonzero()[0, 0])
            for l in range(first + 1):
                assert torch.equal(att[l], att_plain[l][0]), (case, name, l)
            out.append({
                "name": name,
                "length": T,
                "token_ids": list(ids),
                "token_type_ids": list(types),
                "last_hidden_state": arr(hid[0]),
                "attentions": arr(att),
                "pooler_output": arr(pooled[0]),
                "mean_pooled": arr(hid[0].mean(dim=0)),
            })
        cases.append({
            "name": case,
            "head_mask": {"shape": list(head_mask.shape),
                          "data": head_mask.reshape(-1).tolist()},
            "sequences": out,
        })
    doc = {
        "format": "attnserve-golden-head-mask-v1",
        "generator": "tools/gen_golden.py",
        "reference_precision": "float64",
        "config": {k: cfg[k] for k in (
            "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size",
            "layer_norm_eps")},
        "cases": cases,
    }
    path = os.path.join(OUT_ROOT, dirname, "golden_head_mask.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("%-24s head masks %s: vs zeroed output columns %.2g"
          % (dirname, ", ".join(c["name"] for c in cases), worst))


# --------------------------------------------------------------------------- moderate

# One layer at BERT-base width (H = 768, 12 heads of 64) and a sequence longer
# than tiny_bert's 40 positions: what tiny shapes cannot show (long dot
# products, many heads, T > 40). Its 22 MB of weights are not committed: they
# come from a formula both this script and tests/moderate_golden_test.cc
# compute (FormulaWeights there), so only the outputs are stored.
MODERATE_CONFIG = dict(CONFIG, hidden_size=768, num_attention_heads=12,
                       num_hidden_layers=1, intermediate_size=1536,
                       max_position_embeddings=64)
MODERATE_SEED = 0x5EED5EED
GOLDEN_RATIO_64 = 0x9E3779B97F4A7C15


def splitmix64(seed, first, n):
    """Elements first .. first+n-1 of SplitMix64's stream from `seed`, as uint64."""
    with np.errstate(over="ignore"):
        i = np.arange(first + 1, first + n + 1, dtype=np.uint64)
        z = np.uint64(seed) + i * np.uint64(GOLDEN_RATIO_64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def formula_weights(cfg, seed):
    """Every tensor in sorted-name order from one SplitMix64 stream: with
    u = (z >> 11)·2^-53 in [0, 1) and r = 2u − 1, LayerNorm weights are
    1 + 0.1·r, biases 0.1·r, other weights 0.08·r (std ≈ 0.046), each computed
    in double and rounded to float32 once."""
    w = {}
    first = 0
    for name, shape in sorted(weight_shapes(cfg).items()):
        n = int(np.prod(shape))
        u = (splitmix64(seed, first, n) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
        r = 2.0 * u - 1.0
        if name.endswith("LayerNorm.weight"):
            v = 1.0 + 0.1 * r
        elif name.endswith(".bias"):
            v = 0.1 * r
        else:
            v = 0.08 * r
        w[name] = torch.from_numpy(v.astype(np.float32).reshape(shape))
        first += n
    return w


def write_moderate(dirname="moderate_bert"):
    """tests/data/moderate_bert: config.json, golden.json (the sequence and how
    the weights are made) and golden.safetensors (float32 outputs of the
    float64 reference: hidden (T, H), attentions (L, NH, T, T), pooler (H))."""
    cfg = MODERATE_CONFIG
    d = os.path.join(OUT_ROOT, dirname)
    os.makedirs(d, exist_ok=True)
    w = formula_weights(cfg, MODERATE_SEED)
    # 48 tokens, a pair: [CLS] 22 words [SEP] 23 words [SEP], types 0 then 1.
    ids_rng = splitmix64(MODERATE_SEED + 1, 0, 45) % np.uint64(cfg["vocab_size"] - 5) + np.uint64(5)
    words = [int(x) for x in ids_rng]
    ids = [CLS_ID] + words[:22] + [SEP_ID] + words[22:] + [SEP_ID]
    types = [0] * 24 + [1] * 24
    assert len(ids) == 48 > CONFIG["max_position_embeddings"]
    seqs = [("pair48", ids, types)]
    golden, worst, alone = compute_golden(w, cfg, seqs)
    xc = crosscheck_torch_nn({k: v.to(torch.float64) for k, v in w.items()}, cfg, seqs, alone)
    hid, att, pooled, _ = alone[0]
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    doc = {
        "format": "attnserve-golden-moderate-v1",
        "generator": "tools/gen_golden.py",
        "reference_precision": "float64",
        "weights": {"formula": "splitmix64", "seed": MODERATE_SEED,
                    "layer_norm_weight": "1 + 0.1 r", "bias": "0.1 r", "weight": "0.08 r"},
        "sequence": {"name": "pair48", "token_ids": ids, "token_type_ids": types},
        "outputs": "golden.safetensors: hidden (T, H), attentions (L, NH, T, T), pooler (H)",
    }
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    write_safetensors(os.path.join(d, "golden.safetensors"),
                      {"hidden": hid.to(torch.float32),
                       "attentions": att.to(torch.float32),
                       "pooler": pooled.to(torch.float32)}, "F32")
    print("%-24s H=768 T=48 vs torch.nn %.2g, max attn prob %.3f"
          % (dirname, xc, float(att.max())))


def prune_weights(w, cfg, pruned):
    """Hugging Face's prune_heads as plain tensor ops (Debian has no transformers):
    delete the pruned heads' rows of query/key/value weight and bias and their columns
    of attention.output.dense.weight. Returns (weights, kept heads per layer)."""
    H, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    dh = H // NH
    out = dict(w)
    kept = []
    for l in range(cfg["num_hidden_layers"]):
        heads = [h for h in range(NH) if not pruned[l, h]]
        kept.append(heads)
        idx = torch.tensor([h * dh + i for h in heads for i in range(dh)], dtype=torch.int64)
        p = "encoder.layer.%d." % l
        for part in ("query", "key", "value"):
            out[p + "attention.self.%s.weight" % part] = w[p + "attention.self.%s.weight" % part][idx]
            out[p + "attention.self.%s.bias" % part] = w[p + "attention.self.%s.bias" % part][idx]
        name = p + "attention.output.dense.weight"
        out[name] = w[name][:, idx]
    return out, kept


def bert_forward_pruned(w, cfg, kept, ids, type_ids):
    """bert_forward for weights that prune_weights shrank: layer l has len(kept[l])
    heads (a layer with none adds only the output bias, as Hugging Face's
    Linear(0, H) does). Attentions come back (B, NH, T, T) in the original head
    numbering, zeros for pruned heads (attnserve's convention)."""
    B, T = ids.shape
    H, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    dh = H // NH
    eps = cfg["layer_norm_eps"]
    dt = w["embeddings.word_embeddings.weight"].dtype

    def ln(x, prefix):
        return F.layer_norm(x, (H,), w[prefix + ".weight"], w[prefix + ".bias"], eps)

    def lin(x, prefix):
        return x @ w[prefix + ".weight"].t() + w[prefix + ".bias"]

    pos = torch.arange(T)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][pos][None, :, :]
         + w["embeddings.token_type_embeddings.weight"][type_ids])
    x = ln(x, "embeddings.LayerNorm")
    attentions = []
    for i in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % i
        nh = len(kept[i])
        full = torch.zeros(B, NH, T, T, dtype=dt)
        if nh > 0:
            def split(t):  # (B,T,nh*dh) -> (B,nh,T,dh)
                return t.view(B, T, nh, dh).permute(0, 2, 1, 3)
            q = split(lin(x, p + "attention.self.query"))
            k = split(lin(x, p + "attention.self.key"))
            v = split(lin(x, p + "attention.self.value"))
            probs = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(dh), dim=-1)
            full[:, kept[i]] = probs
            ctx = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, nh * dh)
            attn_out = lin(ctx, p + "attention.output.dense")
        else:
            attn_out = w[p + "attention.output.dense.bias"].expand(B, T, H)
        attentions.append(full)
        x = ln(attn_out + x, p + "attention.output.LayerNorm")
        inter = F.gelu(lin(x, p + "intermediate.dense"))
        x = ln(lin(inter, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = torch.tanh(lin(x[:, 0, :], "pooler.dense"))
    return x, attentions, pooled


def prune_cases(cfg):
    """(name, (L, NH) int64 with 1 = pruned), in golden order: heads of different
    layers (so layers keep different head counts), and a layer with no head left."""
    L, NH = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    some = torch.zeros(L, NH, dtype=torch.int64)
    some[0, 1] = some[0, 3] = some[1, 0] = 1
    layer = torch.zeros(L, NH, dtype=torch.int64)
    layer[0, 2] = 1
    layer[1, :] = 1
    return [("l0h1_l0h3_l1h0", some), ("l0h2_layer1_all", layer)]


def write_pruned_golden(dirname, w32, cfg, seqs):
    """tiny_bert/golden_pruned.json: as golden_head_mask.json, "head_mask" naming the
    pruned heads; outputs of the PRUNED model (weights really cut), checked here against
    the unpruned model with the same heads in head_mask."""
    wd = {k: v.to(torch.float64) for k, v in w32.items()}
    chosen = [s for s in seqs if s[0] in HEAD_MASK_SEQUENCES]
    cases = []
    worst = 0.0
    for case, pruned in prune_cases(cfg):
        wp, kept = prune_weights(wd, cfg, pruned)
        out = []
        for name, ids, types in chosen:
            T = len(ids)
            idt, tyt = torch.tensor([ids]), torch.tensor([types])
            hid, att, pooled = bert_forward_pruned(wp, cfg, kept, idt, tyt)
            hid_m, att_m, pooled_m = bert_forward(wd, cfg, idt, tyt, head_mask=pruned)
            att = torch.stack([a[0] for a in att])
            d = max(float((hid[0] - hid_m[0]).abs().max()),
                    float((pooled - pooled_m).abs().max()))
            assert d < 1e-12, "pruned vs masked differ for %s %s: %g" % (case, name, d)
            worst = max(worst, d)
            out.append({
                "name": name,
                "length": T,
                "token_ids": list(ids),
                "token_type_ids": list(types),
                "last_hidden_state": arr(hid[0]),
                "attentions": arr(att),
                "pooler_output": arr(pooled[0]),
                "mean_pooled": arr(hid[0].mean(dim=0)),
            })
        cases.append({
            "name": case,
            "head_mask": {"shape": list(pruned.shape), "data": pruned.reshape(-1).tolist()},
            "sequences": out,
        })
    doc = {
        "format": "attnserve-golden-pruned-v1",
        "generator": "tools/gen_golden.py",
        "reference_precision": "float64",
        "config": {k: cfg[k] for k in (
            "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size",
            "layer_norm_eps")},
        "cases": cases,
    }
    path = os.path.join(OUT_ROOT, dirname, "golden_pruned.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("%-24s pruned %s: vs head_mask %.2g"
          % (dirname, ", ".join(c["name"] for c in cases), worst))


def main():
    if not os.path.isdir(OUT_ROOT) or not os.path.isdir("tools"):
        sys.exit("run from the repo root: /usr/bin/python3 tools/gen_golden.py")
    assert len(VOCAB) == CONFIG["vocab_size"] == 99, len(VOCAB)
    assert len(set(VOCAB)) == len(VOCAB)
    torch.set_num_threads(1)  # deterministic reductions
    cfg = CONFIG
    w32 = init_weights(cfg)
    seqs = make_sequences(cfg)
    write_variant("tiny_bert", w32, cfg, seqs, "F32", "", "float32")
    write_head_mask_golden("tiny_bert", w32, cfg, seqs)
    write_pruned_golden("tiny_bert", w32, cfg, seqs)
    w16 = write_variant("tiny_bert_f16", w32, cfg, seqs, "F16", "", "float16")
    wbf = write_variant("tiny_bert_bf16_prefixed", w32, cfg, seqs, "BF16", "bert.",
                        "bfloat16")
    # The rounded variants really differ from f32 (so their goldens are not redundant).
    assert any(not torch.equal(w16[k], w32[k]) for k in w32)
    assert any(not torch.equal(wbf[k], w32[k]) for k in w32)
    write_moderate()


if __name__ == "__main__":
    main()
