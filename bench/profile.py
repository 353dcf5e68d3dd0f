#!/usr/bin/python3
"""Where one attnserve forward pass spends its time, by oneDNN primitive.

    OMP_NUM_THREADS=2 /usr/bin/python3 bench/profile.py [--shape 8x128] [--precision fp32]
        [--attn LAYER] [--build build-bench] [--model bench/out/bert-base]

Runs encoder_bench with ONEDNN_VERBOSE=1 (oneDNN 2.6 prints one "exec" line per
primitive execution, with its time in ms, on stdout), warms the shape up, then
times `--calls` forward passes and sums the primitive times of the last call by
kind, implementation and problem. What the wall time has beyond oneDNN's sum is
our own code (embeddings, copies of attention maps, pooling) plus waits.
"""

import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="8x128")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--attn", type=int, default=-1)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--bf16_attention", default="amx", choices=["amx", "always", "never"])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--model", default=os.path.join(HERE, "out", "bert-base"))
    args = ap.parse_args()
    cmds = "run %s 1 %d\nrun %s %d %d\nquit\n" % (args.shape, args.attn, args.shape,
                                                   args.calls, args.attn)
    env = dict(os.environ, ONEDNN_VERBOSE="1", OMP_NUM_THREADS=os.environ.get(
        "OMP_NUM_THREADS", "2"))
    p = subprocess.run([os.path.join(args.build, "bin", "encoder_bench"),
                        "--model=" + args.model, "--precision=" + args.precision, "--worker",
                        "--bf16_attention=" + args.bf16_attention],
                       input=cmds, capture_output=True, text=True, env=env)
    calls = []  # exec lines between replies
    current = []
    replies = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            replies.append(json.loads(line))
            calls.append(current)
            current = []
        elif line.startswith("onednn_verbose,exec"):
            current.append(line.split(","))
    if len(replies) < 3 or not replies[2].get("ok"):
        sys.exit("encoder_bench failed: %s %s" % (replies, p.stderr[-500:]))
    timed = calls[2]  # every exec line of the --calls timed passes
    wall = replies[2]["ms"]
    per_call = len(timed) // args.calls
    last = timed[-per_call:]
    groups = collections.defaultdict(lambda: [0, 0.0])
    for f in last:
        # exec,cpu,<kind>,<impl>,<prop>,<mem descs>,<attrs>,<aux>,<problem>,<ms>
        key = (f[3], f[4], f[9] if len(f) > 10 else "")
        groups[key][0] += 1
        groups[key][1] += float(f[-1])
    total = sum(g[1] for g in groups.values())
    print("%s %s: wall %s ms per call (last %.1f); oneDNN primitives in the last call "
          "sum to %.1f ms (%d executions); the rest, %.1f ms, is our own code and waits"
          % (args.shape, args.precision, ", ".join("%.1f" % w for w in wall), wall[-1],
             total, len(last), wall[-1] - total))
    print()
    print("| primitive | implementation | problem | calls | ms | share of wall |")
    print("|---|---|---|---|---|---|")
    for (kind, impl, prob), (n, ms) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        print("| %s | %s | %s | %d | %.1f | %.0f %% |" % (kind, impl, prob, n, ms,
                                                         100 * ms / wall[-1]))


if __name__ == "__main__":
    main()
