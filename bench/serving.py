#!/usr/bin/python3
"""Serving throughput under concurrency: `attnctl bench` against a real
attnserve on the random BERT-base, one run per concurrency, as a markdown
table (BENCHMARKS.md "Serving under concurrency").

    /usr/bin/python3 bench/make_bert_base.py          # once: bench/out/bert-base
    /usr/bin/python3 bench/serving.py [--concurrency 1,4,16] [--duration 15]
        [--tokens 128] [--batch 1] [--rpc encode|tokenize|oip] [--stream]
        [--precision fp32] [--build build] [--model bench/out/bert-base]

It starts `attnserve --model=MODEL --address=127.0.0.1:0` (OMP_NUM_THREADS=2
unless set), then for each concurrency runs `attnctl bench --json` for
--duration seconds, and measures around each run the CPU the server and the
client used and what every other process on the machine used (/proc/stat):
client and server share the cores, and on a shared machine other work skews
the figures, so the table says how much there was. The JSON reports go to
bench/out/serving/<time>/.
"""

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    """CPU seconds every process has used so far (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def process_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def children_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_model():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    m = re.search(r"Model name:\s*(.+)", out)
    return m.group(1).strip() if m else "unknown"


def start_server(binary, model, precision, extra=()):
    """attnserve on a free loopback port: (process, port, command line)."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    cmd = [binary, f"--model={model}", "--address=127.0.0.1:0",
           f"--precision={precision}", "--drain_delay=0s"] + list(extra)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    port = None
    log = []
    for line in proc.stderr:
        log.append(line)
        m = re.search(r"serving .* on 127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        sys.exit("bench/serving.py: attnserve did not start:\n" + "".join(log))
    # Keep draining its stderr so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr],
                     daemon=True).start()
    return proc, port, " ".join(shlex.quote(c) for c in cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--model", default=os.path.join(HERE, "out", "bert-base"))
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rpc", default="encode", choices=["encode", "tokenize", "oip"])
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--precision", default="fp32")
    args = ap.parse_args()

    attnserve = os.path.join(args.build, "bin", "attnserve")
    attnctl = os.path.join(args.build, "bin", "attnctl")
    if not os.path.isfile(os.path.join(args.model, "model.safetensors")):
        sys.exit(f"bench/serving.py: no model in {args.model}: run "
                 "/usr/bin/python3 bench/make_bert_base.py first")
    out_dir = os.path.join(HERE, "out", "serving", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)

    server, port, server_cmd = start_server(attnserve, args.model, args.precision)
    rows = []
    try:
        for c in [int(x) for x in args.concurrency.split(",")]:
            cmd = [attnctl, "bench", f"--target=127.0.0.1:{port}", f"--rpc={args.rpc}",
                   f"--concurrency={c}", f"--duration={args.duration}",
                   f"--tokens={args.tokens}", f"--batch={args.batch}",
                   "--timeout=300", "--json"] + (["--stream"] if args.stream else [])
            load = os.getloadavg()
            t0, b0 = time.monotonic(), busy_seconds()
            s0, c0 = process_seconds(server.pid), children_seconds()
            run = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.monotonic() - t0
            server_cpu = process_seconds(server.pid) - s0
            client_cpu = children_seconds() - c0
            others = max(0.0, busy_seconds() - b0 - server_cpu - client_cpu)
            if run.returncode != 0:
                sys.exit(f"bench/serving.py: {' '.join(cmd)}: {run.stderr}")
            report = json.loads(run.stdout)
            with open(os.path.join(out_dir, f"c{c}.json"), "w") as f:
                json.dump(report, f, indent=1)
            rows.append((c, report, server_cpu / wall, client_cpu / wall,
                         others / (wall * os.cpu_count()), load))
            print(f"concurrency {c}: {report['requests_per_s']:.2f} req/s, "
                  f"p50 {report['latency_ms']['p50']:.0f} ms", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(30)

    ms = lambda x: f"{x:.0f}" if x >= 10 else f"{x:.1f}"
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '2')}")
    print(f"Server: `{server_cmd.replace(REPO + '/', '')}`")
    print(f"Each row: `attnctl bench --rpc={args.rpc} --concurrency=N "
          f"--duration={args.duration:g} --tokens={args.tokens} "
          f"--batch={args.batch}{' --stream' if args.stream else ''} --json`\n")
    print("| concurrency | requests/s | sequences/s | tokens/s | p50 ms | p90 ms "
          "| p99 ms | max ms | OK / calls | server CPU | client CPU | others' CPU "
          "| load avg before |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c, r, server_cores, client_cores, others_share, load in rows:
        l = r["latency_ms"]
        print(f"| {c} | {r['requests_per_s']:.2f} | {r['sequences_per_s']:.2f} "
              f"| {r['tokens_per_s']:.0f} | {ms(l['p50'])} | {ms(l['p90'])} "
              f"| {ms(l['p99'])} | {ms(l['max'])} | {r['ok']} / {r['requests']} "
              f"| {server_cores:.2f} cores | {client_cores:.2f} cores "
              f"| {100 * others_share:.0f} % | {load[0]:.1f} |")
    print(f"\nJSON reports: {out_dir.replace(REPO + '/', '')}/")


if __name__ == "__main__":
    main()
