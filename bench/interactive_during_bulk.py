#!/usr/bin/python3
"""RankHeads' cost and an interactive Encode's latency while it runs (issue
#13), through gRPC, against several attnserve configurations loaded at once
and timed in turn (BENCHMARKS.md "RankHeads and interactive calls").

    /usr/bin/python3 bench/make_bert_base.py        # once: bench/out/bert-base
    /usr/bin/python3 bench/interactive_during_bulk.py [--model DIR]
        [--build build] [--rounds 3] [--precision fp32]
        [--configs old,reuse,split]

Configurations (one attnserve each, OMP_NUM_THREADS=2 unless set):
  old    --rank_heads_reuse_layers=false --max_pass_tokens=0: every ablation
         recomputes the layers below it, passes of up to --max_batch_tokens
         (how RankHeads ran before issue #13)
  reuse  --max_pass_tokens=0: layer inputs reused, no splitting
  split  the defaults: reuse, and bulk passes of at most --max_pass_tokens
         (256) with interactive calls between them
  splitN --max_pass_tokens=N (e.g. split512)

Per round, for each configuration in a rotating order, with 0.2 s of quiet
between them:
  (a) RankHeads of one 16-token sentence, alone: wall time;
  (b) RankHeads of one 64-token sentence, while a second client sends a
      1x16 Encode 0.3 s after it starts and then again 0.3 s after each
      answer until the ranking ends: the ranking's wall time and every
      Encode's latency;
  (c) a 1x16 Encode alone (5 calls): the floor under (b).
Reported: medians over the rounds, ratios against `old` (a) and `reuse` (b)
measured in the same run, and how much CPU other processes used meanwhile
(/proc/stat): the machine is shared.
"""

import argparse
import os
import re
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "client", "python"))
import serving  # noqa: E402
from serving import busy_seconds, cpu_model, process_seconds  # noqa: E402

import attnserve  # noqa: E402

FLAGS = {
    "old": ["--rank_heads_reuse_layers=false", "--max_pass_tokens=0"],
    "reuse": ["--max_pass_tokens=0"],
    "split": [],
}


def flags_of(config):
    if config in FLAGS:
        return FLAGS[config]
    m = re.fullmatch(r"split(\d+)", config)
    if not m:
        sys.exit(f"unknown configuration {config!r}")
    return [f"--max_pass_tokens={m.group(1)}"]


def sentence(n, salt):
    """[CLS] w ... w [SEP], n tokens, ids from a fixed formula."""
    return [101] + [1000 + (i * 7919 + salt * 104729) % 28000
                    for i in range(n - 2)] + [102]


def start_server(binary, model, precision, extra):
    proc, port, _ = serving.start_server(
        binary, model, precision,
        ["--log_requests=false", "--default_timeout=600s"] + list(extra))
    return proc, port


class Segment:
    """Wall time, and the share of both cores that other processes used."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        self.t0, self.b0 = time.perf_counter(), busy_seconds()
        self.p0 = process_seconds(self.pid)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        mine = process_seconds(self.pid) - self.p0
        other = busy_seconds() - self.b0 - mine
        self.others = max(0.0, other) / (2 * self.wall)


def encode_1x16(client):
    t0 = time.perf_counter()
    client.encode([sentence(16, 7)], pooling="cls")
    return time.perf_counter() - t0


def rank_with_encodes(client, encoder):
    """(b): RankHeads of 64 tokens with 1x16 Encodes sent meanwhile."""
    done = threading.Event()
    latencies = []

    def interactive():
        while not done.wait(0.3):
            latencies.append(encode_1x16(encoder))

    t = threading.Thread(target=interactive)
    t0 = time.perf_counter()
    t.start()
    client.rank_heads([sentence(64, 3)])
    wall = time.perf_counter() - t0
    done.set()
    t.join()
    return wall, latencies


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--model", default=os.path.join(HERE, "out", "bert-base"))
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--configs", default="old,reuse,split")
    args = ap.parse_args()
    configs = args.configs.split(",")
    binary = os.path.join(args.build, "bin", "attnserve")
    servers = {}
    try:
        for c in configs:
            servers[c] = start_server(binary, args.model, args.precision,
                                      flags_of(c))
        clients = {c: attnserve.Client(f"127.0.0.1:{p}", timeout=600)
                   for c, (_, p) in servers.items()}
        encoders = {c: attnserve.Client(f"127.0.0.1:{p}", timeout=600)
                    for c, (_, p) in servers.items()}
        # Warm-up: primitives, allocators.
        for c in configs:
            clients[c].rank_heads([sentence(16, 1)])
            encode_1x16(encoders[c])
        rank16 = {c: [] for c in configs}
        rank64 = {c: [] for c in configs}
        lat = {c: [] for c in configs}
        alone = {c: [] for c in configs}
        others = []
        load_before = os.getloadavg()
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            for c in order:
                pid = servers[c][0].pid
                time.sleep(0.2)
                with Segment(pid) as s:
                    clients[c].rank_heads([sentence(16, 2)])
                rank16[c].append(s.wall)
                others.append(s.others)
                time.sleep(0.2)
                with Segment(pid) as s:
                    wall, ls = rank_with_encodes(clients[c], encoders[c])
                rank64[c].append(wall)
                lat[c].extend(ls)
                others.append(s.others)
                time.sleep(0.2)
                for _ in range(5):
                    alone[c].append(encode_1x16(encoders[c]))
                print(f"round {r} {c}: rank16 {rank16[c][-1]:.2f} s, rank64 "
                      f"{wall:.2f} s, encodes during it "
                      f"{', '.join(f'{x * 1000:.0f}' for x in ls)} ms",
                      file=sys.stderr)
        load_after = os.getloadavg()
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait()

    print(f"Command: `{' '.join(sys.argv)}`  ")
    print(f"Host: `lscpu` model name **{cpu_model()}**, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '2')}, "
          f"precision {args.precision}, {args.rounds} rounds; load average "
          f"before {load_before[0]:.1f}, after {load_after[0]:.1f}; other "
          f"processes used a median {100 * median(others):.0f} % "
          f"(max {100 * max(others):.0f} %) of the two cores during the "
          "timed segments.\n")
    base_a = median(rank16.get("old", [])) if "old" in rank16 else None
    base_b = median(rank64.get("reuse", [])) if "reuse" in rank64 else None
    print("| config | flags | RankHeads 1x16 s (median) | vs old | "
          "RankHeads 1x64 with Encodes s | vs reuse | 1x16 Encode during it "
          "ms: median / max (n) | 1x16 Encode alone ms |")
    print("|---|---|---|---|---|---|---|---|")
    for c in configs:
        a, b = median(rank16[c]), median(rank64[c])
        va = f"{base_a / a:.2f}× faster" if base_a else ""
        vb = f"{b / base_b:.2f}×" if base_b else ""
        ls = lat[c]
        print(f"| {c} | `{' '.join(flags_of(c)) or '(defaults)'}` | {a:.2f} | "
              f"{va} | {b:.2f} | {vb} | "
              f"{1000 * median(ls):.0f} / {1000 * max(ls, default=0):.0f} "
              f"({len(ls)}) | {1000 * median(alone[c]):.0f} |")


if __name__ == "__main__":
    main()
