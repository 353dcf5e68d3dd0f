"""BERT (Hugging Face BertModel semantics, eval mode) as a plain torch.nn.Module.

Shared by bench/make_bert_base.py (weights + ONNX export) and bench/torch_bench.py
(the PyTorch baseline). Module attribute names mirror Hugging Face's, so
state_dict() keys are exactly the tensor names BertModel.save_pretrained writes
(no "bert." prefix): "embeddings.word_embeddings.weight",
"encoder.layer.0.attention.self.query.weight", ..., "pooler.dense.weight".

Post-LN layers, erf GELU, tanh pooler over [CLS]; additive key mask built in the
compute dtype from that dtype's lowest value (as Hugging Face does), so bf16 does
not turn float32's lowest into -inf (DESIGN §5b).
"""

import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _SelfAttention(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)


class _AttentionOutput(nn.Module):
    def __init__(self, h, eps):
        super().__init__()
        self.dense = nn.Linear(h, h)
        self.LayerNorm = nn.LayerNorm(h, eps=eps)


class _Attention(nn.Module):
    def __init__(self, h, eps):
        super().__init__()
        self.self = _SelfAttention(h)
        self.output = _AttentionOutput(h, eps)


class _Intermediate(nn.Module):
    def __init__(self, h, i):
        super().__init__()
        self.dense = nn.Linear(h, i)


class _Output(nn.Module):
    def __init__(self, h, i, eps):
        super().__init__()
        self.dense = nn.Linear(i, h)
        self.LayerNorm = nn.LayerNorm(h, eps=eps)


class _Layer(nn.Module):
    def __init__(self, h, i, eps):
        super().__init__()
        self.attention = _Attention(h, eps)
        self.intermediate = _Intermediate(h, i)
        self.output = _Output(h, i, eps)


class _Encoder(nn.Module):
    def __init__(self, h, i, n, eps):
        super().__init__()
        self.layer = nn.ModuleList([_Layer(h, i, eps) for _ in range(n)])


class _Embeddings(nn.Module):
    def __init__(self, v, h, p, tv, eps):
        super().__init__()
        self.word_embeddings = nn.Embedding(v, h)
        self.position_embeddings = nn.Embedding(p, h)
        self.token_type_embeddings = nn.Embedding(tv, h)
        self.LayerNorm = nn.LayerNorm(h, eps=eps)


class _Pooler(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.dense = nn.Linear(h, h)


class Bert(nn.Module):
    """forward(input_ids, attention_mask, token_type_ids), all (B, T) int64
    -> (last_hidden_state (B, T, H), pooler_output (B, H))."""

    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        eps = cfg["layer_norm_eps"]
        self.heads = cfg["num_attention_heads"]
        self.embeddings = _Embeddings(cfg["vocab_size"], h, cfg["max_position_embeddings"],
                                      cfg["type_vocab_size"], eps)
        self.encoder = _Encoder(h, i, cfg["num_hidden_layers"], eps)
        self.pooler = _Pooler(h)

    def forward(self, input_ids, attention_mask, token_type_ids):
        b, t = input_ids.shape
        e = self.embeddings
        pos = torch.arange(t, device=input_ids.device)
        x = (e.word_embeddings(input_ids) + e.position_embeddings(pos)[None]
             + e.token_type_embeddings(token_type_ids))
        x = e.LayerNorm(x)
        dt = x.dtype
        h = x.shape[-1]
        nh = self.heads
        dh = h // nh
        # (B, 1, 1, T): 0 for real keys, dtype's lowest for padding keys.
        add_mask = (1.0 - attention_mask.to(dt))[:, None, None, :] * torch.finfo(dt).min

        def split(y):  # (B, T, H) -> (B, heads, T, dh)
            return y.view(b, t, nh, dh).permute(0, 2, 1, 3)

        for layer in self.encoder.layer:
            sa = layer.attention.self
            q, k, v = split(sa.query(x)), split(sa.key(x)), split(sa.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh) + add_mask
            probs = torch.softmax(scores, dim=-1)  # (B, heads, T, T)
            ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, t, h)
            ao = layer.attention.output
            x = ao.LayerNorm(ao.dense(ctx) + x)
            inter = F.gelu(layer.intermediate.dense(x))  # erf GELU
            x = layer.output.LayerNorm(layer.output.dense(inter) + x)
        pooled = torch.tanh(self.pooler.dense(x[:, 0]))
        return x, pooled


# ------------------------------------------------------------------ safetensors

def read_safetensors(path):
    """{name: float32 tensor} from a safetensors file with F32/F16/BF16 tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        b0, b1 = info["data_offsets"]
        buf = raw[base + b0:base + b1]
        if info["dtype"] == "F32":
            a = np.frombuffer(buf, "<f4")
        elif info["dtype"] == "F16":
            a = np.frombuffer(buf, "<f2").astype(np.float32)
        elif info["dtype"] == "BF16":
            a = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError("%s: dtype %s" % (name, info["dtype"]))
        out[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
    return out


def load_model(model_dir):
    """Bert in eval mode with the weights of a Hugging Face model directory."""
    with open(model_dir + "/config.json") as f:
        cfg = json.load(f)
    m = Bert(cfg)
    w = read_safetensors(model_dir + "/model.safetensors")
    w = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in w.items()}
    m.load_state_dict(w, strict=True)
    return m.eval(), cfg
