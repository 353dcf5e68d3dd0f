#!/usr/bin/python3
"""PyTorch baseline worker for the benchmarks.

    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_bench.py --model DIR --precision fp32|bf16

Debian's python3-torch 1.13 with OpenBLAS (libopenblas0-openmp; with the reference
BLAS it is ~56x slower, docs/ARCHITECTURE.md §6), torch.set_num_threads(2), torch.inference_mode.
bf16 is model.bfloat16() (weights converted once; autocast would re-cast them on
every call). The model is bench/bert_torch.py (Hugging Face BertModel semantics).

Speaks the line protocol of bench/run.py: one JSON reply line after loading, then one
per stdin command:
    run SHAPE ITERS ATTN   times ITERS forward passes of a padded batch (ragged
                           shapes are padded to their longest sequence with an
                           attention mask, as a PyTorch user would); ATTN must be -1
    check PATH             last hidden states of the check batch (padded, masked)
                           against encoder_bench's dump, on the real tokens only
    quit
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_torch  # noqa: E402

# Same as bench/bench_common.h: Shapes() and TokenId().
SHAPES = {
    "1x16": [16], "1x128": [128], "8x128": [128] * 8, "32x128": [128] * 32,
    "8x512": [512] * 8, "ragged": list(range(16, 129, 16)),
}


def token_id(b, t, n):
    if t == 0:
        return 101
    if t == n - 1:
        return 102
    return 1000 + (b * 1000003 + t * 7919 + 12345) % 29522


def batch(seqs):
    """Padded (B, T) input_ids, attention_mask, token_type_ids (int64)."""
    t = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), t, dtype=torch.int64)
    mask = torch.zeros(len(seqs), t, dtype=torch.int64)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    return ids, mask, torch.zeros_like(ids)


def shape_batch(lengths):
    return batch([[token_id(b, t, n) for t in range(n)] for b, n in enumerate(lengths)])


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        model, _ = bert_torch.load_model(args.model)
        if args.precision == "bf16":
            model = model.bfloat16()
    except Exception as e:  # reported, not raised: the driver goes on without us
        reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
        return 1
    reply({"ok": True, "load_s": round(time.perf_counter() - t0, 3),
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "blas": blas_name()})

    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        cmd = parts[0]
        try:
            if cmd == "quit":
                break
            elif cmd == "run":
                name, iters, attn = parts[1], int(parts[2]), int(parts[3])
                if attn >= 0:
                    reply({"ok": False, "error": "attention output not measured for torch"})
                    continue
                inputs = shape_batch(SHAPES[name])
                ms = []
                with torch.inference_mode():
                    for _ in range(iters):
                        t0 = time.perf_counter()
                        model(*inputs)
                        ms.append((time.perf_counter() - t0) * 1e3)
                reply({"ok": True, "ms": ms})
            elif cmd == "check":
                reply(dict(ok=True, **check(model, parts[1])))
            else:
                reply({"ok": False, "error": "unknown command: " + line.strip()})
        except Exception as e:
            reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    return 0


def check(model, path):
    with open(path + ".json") as f:
        meta = json.load(f)
    ref = np.fromfile(path + ".hidden.f32", dtype="<f4").astype(np.float64)
    ids, mask, types = batch(meta["token_ids"])
    with torch.inference_mode():
        hidden, _ = model(ids, mask, types)
    got = np.concatenate([hidden[b, :n].to(torch.float64).numpy().reshape(-1)
                          for b, n in enumerate(meta["lengths"])])
    assert got.shape == ref.shape, (got.shape, ref.shape)
    cos = float(got @ ref / np.sqrt((got @ got) * (ref @ ref)))
    return {"max_abs_hidden": float(np.abs(got - ref).max()), "cosine": cos}


def blas_name():
    try:
        return os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu")
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
