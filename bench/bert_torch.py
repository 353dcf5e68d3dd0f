"""BERT (Hugging Face BertModel semantics, eval mode) as a plain torch.nn.Module.

Shared by bench/make_bert_base.py (weights + ONNX export) and bench/torch_bench.py
(the PyTorch baseline). Module attribute names mirror Hugging Face's, so
state_dict() keys are exactly the tensor names BertModel.save_pretrained writes
(no "bert." prefix): "embeddings.word_embeddings.weight",
"encoder.layer.0.attention.self.query.weight", ..., "pooler.dense.weight".

Post-LN layers, erf GELU, tanh pooler over [CLS]; additive key mask built in the
compute dtype from that dtype's lowest value (as Hugging Face does), so bf16 does
not turn float32's lowest into -inf (docs/ARCHITECTURE.md §6).
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gen_golden  # noqa: E402  (read_safetensors)


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

# The F32/F16/BF16 reader of the golden generator (it also checks the header
# padding and that the data ends at the end of the file).
read_safetensors = gen_golden.read_safetensors


def load_model(model_dir):
    """Bert in eval mode with the weights of a Hugging Face model directory."""
    with open(model_dir + "/config.json") as f:
        cfg = json.load(f)
    m = Bert(cfg)
    w = read_safetensors(model_dir + "/model.safetensors")
    w = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in w.items()}
    m.load_state_dict(w, strict=True)
    return m.eval(), cfg
