#!/usr/bin/python3
"""Benchmark driver: attnserve in-process and through gRPC, ONNX Runtime,
PyTorch fp32/bf16, attnserve bf16/int8, and the oneDNN matmul ceiling, interleaved
in one run. Called by bench/run.sh (which installs, generates and builds first).

Every system is a long-lived worker process answering one JSON line per command
(see encoder_bench.cc, grpc_bench.cc, torch_bench.py, ort_bench.js). All are
loaded first; then each worker's output on a check batch (8 sequences of 16..128
tokens, padded + masked for the baselines) is compared with attnserve fp32's; then
for each round, for each shape, each system times a few calls in turn (the start
of the order rotates every round), with a short pause between systems so nobody's
spinning threads overlap the next one. Medians over all calls of all rounds; the
ratios are between medians of the same run. Memory is measured last, in fresh
processes, one per precision.
"""

import argparse
import datetime
import json
import os
import select
import shlex
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Same as bench/bench_common.h.
SHAPES = {
    "1x16": [16], "1x128": [128], "8x128": [128] * 8, "32x128": [128] * 32,
    "8x512": [512] * 8, "ragged": list(range(16, 129, 16)),
}
ATTN_LAYER = 5  # the one layer whose attention the "8x128+attn" run returns

# The thread-scaling row (attnserve fp32 on 1 thread against 2) and the family rows
# (attnserve against ONNX Runtime on RoBERTa-base and DistilBERT-base shapes).
SCALING_SHAPES = ["1x16", "8x128"]
FAMILY_SHAPES = ["1x16", "1x128", "8x128"]
FAMILIES = {"roberta": "roberta-base", "distilbert": "distilbert-base"}

# Calls timed per system per round, per shape (full, quick).
ITERS = {
    "1x16": (10, 5), "1x128": (4, 2), "8x128": (2, 1), "32x128": (1, 1),
    "8x512": (1, 1), "ragged": (2, 1), "8x128+attn": (2, 1),
}
CEILING_ITERS = (10, 5)
PAUSE_S = 0.1
# PyTorch fp32 is ~6x slower than the rest: half the calls keeps a full run near
# 15 minutes. Its warm-up is skipped where one call takes over ten seconds.
SLOW = {"torch": 0.5, "torch-bf16": 1.0}
SLOW_NO_WARMUP = {"32x128", "8x512"}
# A segment is quiet when other processes used at most this share of the CPUs.
QUIET = 0.15


def matmul_flops(lengths, layers=12, h=768, inter=3072):
    """docs/ARCHITECTURE.md §6 matmul FLOPs over the real tokens (bench_common.h MatmulFlops)."""
    f = 0.0
    for s in lengths:
        f += layers * (2.0 * s * (4 * h * h + 2 * h * inter) + 4.0 * s * s * h)
        f += 2 * h * h
    return f


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Worker:
    """A worker process: one command line in, one JSON line out."""

    def __init__(self, name, argv, env, logdir, cwd=ROOT):
        self.name = name
        self.argv = argv
        self.error = None
        self.info = {}
        self.errlog = open(os.path.join(logdir, name + ".stderr"), "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errlog, env=env, cwd=cwd, text=True,
                                     bufsize=1)
        self.pids = [self.proc.pid]  # processes whose CPU time is "ours" (+ a server)

    def read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TimeoutError("%s: no reply in %ds" % (self.name, timeout))
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("%s exited (code %s); see %s" % (
                self.name, self.proc.wait(), self.errlog.name))
        return json.loads(line)

    def start(self, timeout=300):
        """Waits for the load reply; False (and self.error) when not available."""
        try:
            self.info = self.read(timeout)
        except Exception as e:  # noqa: BLE001 - reported as "not available"
            self.info = {"ok": False, "error": str(e)}
        if not self.info.get("ok"):
            self.error = self.info.get("error", "failed to start")
            self.stop()
            return False
        return True

    def cmd(self, line, timeout=600):
        if self.error:
            return {"ok": False, "error": self.error}
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            return self.read(timeout)
        except Exception as e:  # noqa: BLE001
            self.error = str(e)
            self.stop()
            return {"ok": False, "error": self.error}

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()


class Server:
    """bin/attnserve on a free loopback port."""

    def __init__(self, binary, model, precision, env, logdir, phase):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.precision = precision
        self.argv = [binary, "--model=" + model, "--address=" + self.address,
                     "--precision=" + precision]
        self.log = os.path.join(logdir, "attnserve-%s-%s.log" % (precision, phase))
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     env=env, cwd=ROOT)

    def wait_ready(self, timeout=180):
        """True once the port accepts connections; False if the server exited."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.2)
        return False

    def exit_message(self):
        with open(self.log) as f:
            lines = [l.strip() for l in f if l.strip()]
        return "attnserve --precision=%s exited (code %s): %s" % (
            self.precision, self.proc.poll(), lines[-1] if lines else "no output")

    def reset_peak(self):
        """VmHWM := VmRSS (writing 5 to clear_refs, Linux >= 4.0)."""
        try:
            with open("/proc/%d/clear_refs" % self.proc.pid, "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def status_kb(self, key):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------ systems

def make_systems(args, env, logdir):
    """(name, worker or None, shapes it runs, note). Started one at a time so loads
    do not compete; a system that cannot start is kept with its error."""
    b = os.path.join(args.build, "bin")
    eb = os.path.join(b, "encoder_bench")
    model = args.model_dir
    node_env = dict(env, NODE_PATH=os.path.join(HERE, "out", "node", "node_modules"))
    all_shapes = list(SHAPES)
    attn = all_shapes + ["8x128+attn"]
    plan = [
        ("attnserve", lambda: Worker("attnserve", [eb, "--model=" + model, "--worker"],
                                     env, logdir), attn),
        ("attnserve-grpc", None, attn),  # started below with its server
        ("onnxruntime", lambda: Worker("onnxruntime", ["node", os.path.join(HERE, "ort_bench.js"),
                                                       "--model", args.onnx], node_env, logdir),
         all_shapes),
        ("torch", lambda: Worker("torch", [sys.executable, os.path.join(HERE, "torch_bench.py"),
                                           "--model", model, "--precision", "fp32"], env, logdir),
         all_shapes),
        ("attnserve-bf16", lambda: Worker("attnserve-bf16", [eb, "--model=" + model,
                                                             "--precision=bf16", "--worker"],
                                          env, logdir), all_shapes),
        ("torch-bf16", lambda: Worker("torch-bf16", [sys.executable,
                                                     os.path.join(HERE, "torch_bench.py"),
                                                     "--model", model, "--precision", "bf16"],
                                      env, logdir), all_shapes),
        ("attnserve-int8", lambda: Worker("attnserve-int8", [eb, "--model=" + model,
                                                             "--precision=int8", "--worker"],
                                          env, logdir), all_shapes),
    ]
    # Thread scaling: the same fp32 model on one thread (run.sh sets 2 for the rest).
    plan.append(("attnserve-1t", lambda: Worker(
        "attnserve-1t", [eb, "--model=" + model, "--worker"],
        dict(env, OMP_NUM_THREADS="1"), logdir), SCALING_SHAPES))
    # Other families (bench/make_family_models.py): attnserve and ONNX Runtime.
    for fam, fdir in FAMILIES.items():
        mdir = os.path.join(args.family_dir, fdir)
        onnx = os.path.join(args.family_dir, fdir + ".onnx")
        plan.append(("attnserve-" + fam, lambda mdir=mdir, fam=fam: Worker(
            "attnserve-" + fam, [eb, "--model=" + mdir, "--worker"], env, logdir),
            FAMILY_SHAPES))
        plan.append(("onnxruntime-" + fam, lambda onnx=onnx, fam=fam: Worker(
            "onnxruntime-" + fam, ["node", os.path.join(HERE, "ort_bench.js"), "--model", onnx],
            node_env, logdir), FAMILY_SHAPES))
    if args.systems:
        keep = set(args.systems.split(","))
        plan = [p for p in plan if p[0] in keep]
    systems = {}
    server = None
    for name, factory, shapes in plan:
        t0 = time.time()
        if name == "attnserve-grpc" and args.server_build_failed:
            w, err = None, "attnserve did not build, see " + args.server_build_failed
        elif name == "attnserve-grpc":
            server = Server(os.path.join(b, "attnserve"), model, "fp32", env, logdir, "timing")
            if not server.wait_ready():
                w = None
                err = server.exit_message()
            else:
                w = Worker(name, [os.path.join(b, "grpc_bench"), "--target=" + server.address,
                                  "--worker"], env, logdir)
                w.pids.append(server.proc.pid)
                err = None if w.start() else w.error
        else:
            w = factory()
            err = None if w.start() else w.error
        log("%-15s %s (%.1fs)" % (name, "ready" if not err else "NOT AVAILABLE: " + err,
                                   time.time() - t0))
        systems[name] = {"worker": w if not err else None, "shapes": shapes, "error": err,
                         "info": w.info if w else {},
                         "server": server if name == "attnserve-grpc" else None}
    return systems, server


# ------------------------------------------------------------------------ phases

def run_checks(systems, ceiling, check_path):
    """Every worker's hidden states on the check batch against attnserve fp32."""
    res = {}
    ref = systems.get("attnserve", {}).get("worker")
    if ref is None:
        return {"error": "attnserve fp32 not available: no reference"}
    r = ref.cmd("dump " + check_path)
    if not r.get("ok"):
        return {"error": "dump failed: " + r.get("error", "")}
    for name, s in systems.items():
        w = s["worker"]
        if w is None or name == "attnserve" or name.split("-", 1)[-1] in FAMILIES:
            continue
        verb = "compare" if name in ("attnserve-bf16", "attnserve-int8",
                                     "attnserve-1t") else "check"
        res[name] = w.cmd("%s %s" % (verb, check_path))
        log("check %-15s %s" % (name, json.dumps(res[name])))
    # Each family's ONNX Runtime model against attnserve on the same checkpoint.
    for fam in FAMILIES:
        ref = systems.get("attnserve-" + fam, {}).get("worker")
        ort = systems.get("onnxruntime-" + fam, {}).get("worker")
        if ref is None or ort is None:
            continue
        path = "%s-%s" % (check_path, fam)
        r = ref.cmd("dump " + path)
        res["onnxruntime-" + fam] = (ort.cmd("check " + path) if r.get("ok") else
                                     {"ok": False, "error": "dump failed: " +
                                      r.get("error", "")})
        log("check %-15s %s" % ("onnxruntime-" + fam, json.dumps(res["onnxruntime-" + fam])))
    return res


def busy_jiffies():
    """CPU time spent by everything on the machine (all CPUs), in clock ticks."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal


def proc_jiffies(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def timed(line_fn, pids):
    """Runs one segment; returns (reply, share of the machine's CPUs that other
    processes used meanwhile: 0 = quiet, 0.5 = one core busy elsewhere)."""
    b0, p0, t0 = busy_jiffies(), proc_jiffies(pids), time.time()
    out = line_fn()
    b1, p1, t1 = busy_jiffies(), proc_jiffies(pids), time.time()
    ticks = max(1e-9, (t1 - t0) * os.sysconf("SC_CLK_TCK") * os.cpu_count())
    return out, max(0.0, ((b1 - b0) - (p1 - p0)) / ticks)


def segment(worker, shape, iters):
    if shape == "8x128+attn":
        return worker.cmd("run 8x128 %d %d" % (iters, ATTN_LAYER))
    return worker.cmd("run %s %d -1" % (shape, iters))


def run_rounds(systems, ceiling, rounds, quick, order_shapes, retry_noisy):
    """samples[system][shape] = per kept segment, the list of ms of its calls (ceilings
    in samples['ceiling-<t>']['8x128']); foreign[system][shape] = other processes'
    CPU share during each of those segments.
    A segment during which other processes used more than `retry_noisy` of the
    CPUs is run once more and the quieter of the two kept, unless the segment
    before it was noisy too (0 = never)."""
    qi = 1 if quick else 0
    samples = {}
    foreign = {}
    errors = {}
    last_busy = 0.0
    names = [n for n, s in systems.items() if s["worker"] is not None]
    ceil_names = ["ceiling-" + t for t in ("f32", "bf16", "int8")] if ceiling else []
    for r in range(-1, rounds):  # round -1 is warm-up (primitives, caches): discarded
        t_round = time.time()
        for shape in order_shapes:
            members = [n for n in names if shape in systems[n]["shapes"]]
            if shape == "8x128":
                members += ceil_names
            if not members:
                continue
            k = (r + 1) % len(members)
            members = members[k:] + members[:k]  # rotate the start every round
            for name in members:
                if name.startswith("ceiling-"):
                    w = ceiling
                    line = "matmul %s %d" % (name.split("-")[1],
                                             2 if r < 0 else CEILING_ITERS[qi])
                    fn = lambda: w.cmd(line)  # noqa: E731
                else:
                    w = systems[name]["worker"]
                    if w is None or w.error:
                        continue
                    if r < 0 and name.startswith("torch") and shape in SLOW_NO_WARMUP:
                        continue
                    n = 1 if r < 0 else max(1, int(ITERS[shape][qi] * SLOW.get(name, 1)))
                    fn = lambda: segment(w, shape, n)  # noqa: E731
                out, busy = timed(fn, w.pids)
                time.sleep(PAUSE_S)
                # Retry bursts only: under steady load a retry costs time and wins nothing.
                if (r >= 0 and retry_noisy and busy > retry_noisy and out.get("ok")
                        and last_busy <= retry_noisy):
                    out2, busy2 = timed(fn, w.pids)
                    time.sleep(PAUSE_S)
                    log("noisy segment %s %s: others used %.0f %%, again: %.0f %%"
                        % (name, shape, 100 * busy, 100 * busy2))
                    if out2.get("ok") and busy2 < busy:
                        out, busy = out2, busy2
                last_busy = busy
                if not out.get("ok"):
                    err = out.get("error")
                    srv = systems[name].get("server") if name in systems else None
                    if srv is not None and srv.proc.poll() is not None:
                        err += "; " + srv.exit_message()
                    log("error %s %s: %s" % (name, shape, err))
                    errors.setdefault(name, {})[shape] = err
                    continue
                if name.startswith("ceiling-"):
                    systems_info = samples.setdefault("_ceiling_impl", {})
                    systems_info[name] = out.get("impl")
                if r >= 0:
                    samples.setdefault(name, {}).setdefault(shape, []).append(out["ms"])
                    foreign.setdefault(name, {}).setdefault(shape, []).append(busy)
        log("round %s done in %.0fs, load average %s" % (
            "warm-up" if r < 0 else r + 1, time.time() - t_round, loadavg()))
    return samples, foreign, errors


def run_memory(args, env, logdir, precisions, with_server):
    """Fresh processes per precision: the library (load, then one 8x512 forward) and
    the server (load, then 8x512, 32x128 and 8x128 with attention through gRPC)."""
    b = os.path.join(args.build, "bin")
    out = {}
    for p in precisions:
        m = {}
        cmd = [os.path.join(b, "encoder_bench"), "--model=" + args.model_dir,
               "--precision=" + p, "--rss=8x512"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        try:
            m["library"] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            m["library"] = {"ok": False, "error": (proc.stderr or "no output")[-300:]}
        if with_server:
            srv = Server(os.path.join(b, "attnserve"), args.model_dir, p, env, logdir, "memory")
            if srv.wait_ready():
                m["server_after_load_kb"] = srv.status_kb("VmRSS")
                m["server_load_peak_kb"] = srv.status_kb("VmHWM")
                m["server_peak_reset"] = srv.reset_peak()
                w = Worker("grpc-mem-" + p, [os.path.join(b, "grpc_bench"),
                                             "--target=" + srv.address, "--worker"],
                           env, logdir)
                if w.start():
                    for shape, attn in (("8x512", -1), ("32x128", -1), ("8x128", ATTN_LAYER)):
                        r = w.cmd("run %s 1 %d" % (shape, attn))
                        if not r.get("ok"):
                            m["server_error"] = r.get("error")
                    w.stop()
                m["server_serving_peak_kb"] = srv.status_kb("VmHWM")
                m["server_rss_anon_kb"] = srv.status_kb("RssAnon")
                m["server_rss_file_kb"] = srv.status_kb("RssFile")
            else:
                m["server_error"] = srv.exit_message()
            srv.stop()
        log("memory %s %s" % (p, json.dumps(m)))
        out[p] = m
    return out


# ------------------------------------------------------------------------ report

def med(xs):
    return statistics.median(xs) if xs else None


def fmt_ms(x):
    if x is None:
        return "n/a"
    return "%.1f" % x if x < 100 else "%.0f" % x


def fmt_ratio(x):
    return "n/a" if x is None else "%.2f×" % x


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def weight_bytes(model_dir):
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
    return sum(v["data_offsets"][1] - v["data_offsets"][0]
               for k, v in hdr.items() if k != "__metadata__")


def activation_bytes(lengths, h=768, inter=3072, heads=12):
    """Working set of one forward over a batch, independent of any implementation's
    tricks: per token the hidden state, Q/K/V, the context and the FFN
    intermediate (5·H + I floats); plus one layer's attention probabilities for
    the whole batch padded to its longest sequence (B·heads·T² floats)."""
    tokens = sum(lengths)
    t = max(lengths)
    return 4 * (tokens * (5 * h + inter) + len(lengths) * heads * t * t)


def medians(res):
    """(m, noisy): m[system][shape] = median ms over the calls of the quiet segments
    (other processes used <= QUIET of the CPUs) when at least half of the segments,
    and two, were quiet; else over all calls, and noisy[system][shape] = True."""
    m, noisy = {}, {}
    for name, d in res["samples"].items():
        if name.startswith("_"):
            continue
        for shape, segs in d.items():
            busy = res["foreign"][name][shape]
            quiet = [ms for ms, b in zip(segs, busy) if b <= QUIET]
            use_all = len(quiet) < max(2, (len(segs) + 1) // 2)
            calls = [x for seg in (segs if use_all else quiet) for x in seg]
            m.setdefault(name, {})[shape] = med(calls)
            noisy.setdefault(name, {})[shape] = use_all
    return m, noisy


def report(res):
    """Markdown: tables, ceilings, checks, memory, targets."""
    s = res["samples"]
    m, noisy = medians(res)
    L = []
    add = L.append

    def get(name, shape):
        return m.get(name, {}).get(shape)

    def n_of(name, shape):
        return sum(len(seg) for seg in s.get(name, {}).get(shape, []))

    def cell(name, shape):
        """ms, with * when the median had to include noisy segments."""
        v = get(name, shape)
        return fmt_ms(v) + ("\\*" if v is not None and noisy[name][shape] else "")

    add("Command: `%s`  " % res["command"])
    add("Started %s, %d rounds%s, %s; load average before: %s, after: %s.  "
        % (res["started"], res["rounds"], " (--quick)" if res["quick"] else "",
           res["machine"], res["loadavg_before"], res["loadavg_after"]))
    fr = sorted(x for d in res.get("foreign", {}).values() for v in d.values() for x in v)
    if fr:
        add("Other processes on the machine used a median %.0f %% (90th percentile %.0f %%, "
            "max %.0f %%) of the two cores during the timed segments; %d of %d segments were "
            "quiet (≤ %.0f %%).  " % (100 * med(fr), 100 * fr[int(0.9 * (len(fr) - 1))],
                                     100 * fr[-1], sum(x <= QUIET for x in fr), len(fr),
                                     100 * QUIET))
    add("Median milliseconds per batch over the calls of the quiet segments (\\* = fewer "
        "than half were quiet: median of all calls). Calls timed per system and shape: %s "
        "(PyTorch fp32: half).  "
        % ", ".join("%s %d" % (sh, n_of("attnserve", sh) or n_of("onnxruntime", sh))
                    for sh in res["shapes"]))
    add("")
    shapes = res["shapes"]
    add("### fp32: latency per batch (ms, median) and speed-ups measured in the same run")
    add("")
    add("| shape | tokens | attnserve | attnserve gRPC | ONNX Runtime | PyTorch | "
        "attnserve seq/s | attnserve GFLOP/s | ORT ÷ attnserve | PyTorch ÷ attnserve | "
        "in-process ÷ gRPC |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for sh in shapes + ["8x128+attn"]:
        lengths = SHAPES["8x128" if sh == "8x128+attn" else sh]
        a = get("attnserve", sh)
        add("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            sh if sh != "8x128+attn" else "8x128 + layer %d attention" % ATTN_LAYER,
            sum(lengths), cell("attnserve", sh), cell("attnserve-grpc", sh),
            cell("onnxruntime", sh), cell("torch", sh),
            "n/a" if a is None else "%.1f" % (len(lengths) / a * 1e3),
            "n/a" if a is None else "%.0f" % (matmul_flops(lengths) / a / 1e6),
            fmt_ratio(ratio(get("onnxruntime", sh), a)), fmt_ratio(ratio(get("torch", sh), a)),
            fmt_ratio(ratio(a, get("attnserve-grpc", sh)))))
    add("")
    add("Baselines run ragged as one batch padded to 128 with an attention mask; attnserve "
        "packs the real tokens. GFLOP/s counts the matmul FLOPs of the real tokens "
        "(docs/ARCHITECTURE.md §6 formula).")
    add("")
    add("### Precisions: latency per batch (ms, median)")
    add("")
    add("| shape | attnserve fp32 | attnserve bf16 | attnserve int8 | PyTorch bf16 | "
        "bf16 speed-up | int8 speed-up | PyTorch bf16 ÷ attnserve bf16 |")
    add("|---|---|---|---|---|---|---|---|")
    for sh in shapes:
        f, bf, i8 = get("attnserve", sh), get("attnserve-bf16", sh), get("attnserve-int8", sh)
        add("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            sh, cell("attnserve", sh), cell("attnserve-bf16", sh), cell("attnserve-int8", sh),
            cell("torch-bf16", sh),
            fmt_ratio(ratio(f, bf)), fmt_ratio(ratio(f, i8)),
            fmt_ratio(ratio(get("torch-bf16", sh), bf))))
    add("")
    add("### Ceiling: plain oneDNN matmul M=1024 K=768 N=3072, timed in the same rounds as 8x128")
    add("")
    add("| matmul | kernel | ms (median) | GFLOP/s | attnserve encoder 8x128 at this precision "
        "| encoder ÷ ceiling |")
    add("|---|---|---|---|---|---|")
    impl = s.get("_ceiling_impl", {})
    flops_8x128 = matmul_flops(SHAPES["8x128"])
    for t, sysname in (("f32", "attnserve"), ("bf16", "attnserve-bf16"),
                       ("int8", "attnserve-int8")):
        c = get("ceiling-" + t, "8x128")
        cg = 2 * 1024 * 768 * 3072 / c / 1e6 if c else None
        e = get(sysname, "8x128")
        eg = flops_8x128 / e / 1e6 if e else None
        add("| %s | %s | %s | %s | %s | %s |" % (
            t, impl.get("ceiling-" + t, "n/a"), cell("ceiling-" + t, "8x128"),
            "n/a" if cg is None else "%.0f" % cg,
            "n/a" if eg is None else "%.0f GFLOP/s" % eg,
            "n/a" if eg is None or cg is None else "%.0f %%" % (100 * eg / cg)))
    add("")

    info = {n: d.get("info", {}) for n, d in res.get("systems", {}).items()}
    add("### Where it ran")
    add("")
    add("CPU: %s; flags: %s. oneDNN dispatched to **%s** (`dnnl::get_effective_cpu_isa()`)."
        % (res.get("cpu", "?"), res.get("cpu_flags", "?"),
           info.get("attnserve", {}).get("isa", "n/a")))
    add("")
    add("| precision | linear-layer kernel (FFN-in matmul, 8x128's rows) | attention Q·Kᵀ / P·V kernels (8x128) |")
    add("|---|---|---|")
    for p, sysname in (("fp32", "attnserve"), ("bf16", "attnserve-bf16"),
                       ("int8", "attnserve-int8")):
        i = info.get(sysname, {})
        add("| %s | `%s` | `%s`%s |" % (p, i.get("linear_impl", "n/a"),
                                        i.get("attention_impl", "n/a"),
                                        " (bf16 attention)" if i.get("attention_bf16") else ""))
    add("")
    add("### Threads: attnserve fp32 on 1 thread against 2 (same run)")
    add("")
    add("| shape | 1 thread ms | 2 threads ms | speed-up from the second thread |")
    add("|---|---|---|---|")
    for sh in SCALING_SHAPES:
        add("| %s | %s | %s | %s |" % (sh, cell("attnserve-1t", sh), cell("attnserve", sh),
                                       fmt_ratio(ratio(get("attnserve-1t", sh),
                                                       get("attnserve", sh)))))
    add("")
    add("### Encoder families: attnserve fp32 against ONNX Runtime fp32 (same run)")
    add("")
    add("Random weights at the shapes of bert-base-uncased (`bench/make_bert_base.py`), "
        "roberta-base and distilbert-base-uncased (`bench/make_family_models.py`); "
        "ONNX Runtime pads and masks, attnserve packs (all shapes here are unpadded).")
    add("")
    add("| model | shape | attnserve ms | ONNX Runtime ms | ORT ÷ attnserve |")
    add("|---|---|---|---|---|")
    rows = [("BERT-base", "attnserve", "onnxruntime")] + [
        ({"roberta": "RoBERTa-base", "distilbert": "DistilBERT-base"}[f],
         "attnserve-" + f, "onnxruntime-" + f) for f in FAMILIES]
    for label, a_name, o_name in rows:
        for sh in FAMILY_SHAPES:
            add("| %s | %s | %s | %s | %s |" % (label, sh, cell(a_name, sh), cell(o_name, sh),
                                                fmt_ratio(ratio(get(o_name, sh),
                                                                get(a_name, sh)))))
    add("")
    add("### Output checks (check batch: 8 sequences of 16, 32, …, 128 tokens)")
    add("")
    add("| system | vs attnserve fp32 | max abs diff (hidden) | cosine | min token cosine | "
        "max abs diff (attention probs) |")
    add("|---|---|---|---|---|---|")
    for name, c in res["checks"].items():
        if name == "error":
            add("| all | %s | | | | |" % c)
            continue
        if not c.get("ok"):
            add("| %s | error: %s | | | | |" % (name, c.get("error")))
            continue
        add("| %s | %s | %.2g | %.6f | %s | %s |" % (
            name, ("same batch" if name.split("-", 1)[-1] not in FAMILIES
                   else "attnserve fp32 on the %s model" % name.split("-", 1)[-1]),
            c["max_abs_hidden"], c["cosine"],
            "%.6f" % c["min_token_cosine"] if "min_token_cosine" in c else "",
            "%.2g" % c["max_abs_attention"] if "max_abs_attention" in c else ""))
    add("")

    wb = res["weight_bytes"]
    act = activation_bytes(SHAPES["8x512"])
    add("### Memory (fresh process per precision; kB = 1024 bytes)")
    add("")
    add("Weights in the checkpoint: %.0f MB (fp32). Activations of the largest batch "
        "(8x512: per token 5·H + I floats, plus one layer's B·heads·T² probabilities): "
        "%.0f MB." % (wb / 1e6, act / 1e6))
    add("")
    add("| precision | library: RSS after load − before (weights) | library: peak during load | "
        "library: peak of one 8x512 forward | server: RSS after load | server: peak during load "
        "| server: peak serving 8x512, 32x128, 8x128+attn |")
    add("|---|---|---|---|---|---|---|")

    def mb(kb):
        return "%.0f MB" % (kb * 1024 / 1e6) if kb and kb > 0 else "n/a"

    for p, mm in res["memory"].items():
        lib = mm.get("library", {})
        if lib.get("ok"):
            cols = [mb(lib["after_load_kb"] - lib["before_load_kb"]), mb(lib["load_peak_kb"]),
                    mb(lib["forward_peak_kb"])]
        else:
            cols = ["not available: %s" % lib.get("error", "")[:120], "", ""]
        if mm.get("server_after_load_kb"):
            cols += [mb(mm["server_after_load_kb"]), mb(mm.get("server_load_peak_kb")),
                     mb(mm.get("server_serving_peak_kb"))]
        else:
            cols += [("not available: " + mm["server_error"][:120]) if mm.get("server_error")
                     else "not measured", "", ""]
        add("| %s | %s |" % (p, " | ".join(cols)))
    add("")
    add("Peaks are VmHWM; the serving peak is read after resetting VmHWM once the model is "
        "loaded (`echo 5 > /proc/PID/clear_refs`), so it excludes the loader's transient "
        "copies.")
    add("")
    add("### Targets")
    add("")
    add("| target | measured | met? |")
    add("|---|---|---|")
    for t in targets(res, m):
        add("| %s | %s | %s |" % t)
    add("")
    if res.get("grpc_server_died"):
        add("- The gRPC server died during the rounds: %s" % res["grpc_server_died"])
    for name, d in res["errors"].items():
        for shape, e in d.items():
            add("- error, %s %s: %s" % (name, shape, e))
    for name, sysinfo in res["systems"].items():
        if sysinfo.get("error"):
            add("- %s not available: %s" % (name, sysinfo["error"]))
    return "\n".join(L)


def targets(res, m):
    def get(name, shape):
        return m.get(name, {}).get(shape)

    def verdict(ok):
        return "n/a" if ok is None else ("**yes**" if ok else "**no**")

    out = []
    a, o = get("attnserve", "8x128"), get("onnxruntime", "8x128")
    r = ratio(o, a)
    out.append(("fp32 8x128 throughput ≥ 1.25× ONNX Runtime",
                "%s (attnserve %s ms, ORT %s ms)" % (fmt_ratio(r), fmt_ms(a), fmt_ms(o)),
                verdict(None if r is None else r >= 1.25)))
    c = get("ceiling-f32", "8x128")
    if a and c:
        eg = matmul_flops(SHAPES["8x128"]) / a / 1e6
        cg = 2 * 1024 * 768 * 3072 / c / 1e6
        out.append(("fp32 8x128 ≥ 85 % of the oneDNN matmul ceiling",
                    "%.0f %% (%.0f of %.0f GFLOP/s)" % (100 * eg / cg, eg, cg),
                    verdict(eg / cg >= 0.85)))
    else:
        out.append(("fp32 8x128 ≥ 85 % of the oneDNN matmul ceiling", "n/a", "n/a"))
    a1, o1 = get("attnserve", "1x16"), get("onnxruntime", "1x16")
    r = ratio(a1, o1)
    out.append(("fp32 1x16 latency ≤ 0.7× ONNX Runtime's",
                "%s (attnserve %s ms, ORT %s ms)" % (fmt_ratio(r), fmt_ms(a1), fmt_ms(o1)),
                verdict(None if r is None else r <= 0.7)))
    rg = get("attnserve", "ragged")
    r = ratio(rg, a)
    out.append(("ragged (16…128) ≤ 0.6× the padded 8x128 time",
                "%s (%s ms vs %s ms)" % (fmt_ratio(r), fmt_ms(rg), fmt_ms(a)),
                verdict(None if r is None else r <= 0.6)))
    for p, need, cos_need in (("bf16", 1.8, 0.999), ("int8", 2.5, 0.99)):
        x = get("attnserve-" + p, "8x128")
        r = ratio(a, x)
        out.append(("%s ≥ %.1f× our fp32 throughput at 8x128" % (p, need),
                    "%s (%s ms vs fp32 %s ms)" % (fmt_ratio(r), fmt_ms(x), fmt_ms(a))
                    if x else "not available: %s" % (res["systems"].get(
                        "attnserve-" + p, {}).get("error") or "not run"),
                    verdict(None if r is None else r >= need)))
        ck = res["checks"].get("attnserve-" + p, {})
        if ck.get("ok"):
            out.append(("%s cosine of hidden states to fp32 ≥ %g" % (p, cos_need),
                        "%.6f (min over tokens %.6f); largest attention difference %.3g"
                        % (ck["cosine"], ck["min_token_cosine"], ck["max_abs_attention"]),
                        verdict(ck["cosine"] >= cos_need)))
        else:
            out.append(("%s cosine of hidden states to fp32 ≥ %g" % (p, cos_need),
                        "not available", "n/a"))
    x = get("attnserve", "8x128+attn")
    r = ratio(x, a)
    out.append(("one layer's attention costs ≤ 10 % over none at 8x128",
                "%+.1f %% (%s vs %s ms)" % (100 * (r - 1), fmt_ms(x), fmt_ms(a))
                if r else "n/a", verdict(None if r is None else r <= 1.10)))
    g = get("attnserve-grpc", "8x128")
    r = ratio(a, g)
    out.append(("gRPC 8x128 pooled ≥ 0.95× in-process throughput",
                "%s (gRPC %s ms, in-process %s ms)" % (fmt_ratio(r), fmt_ms(g), fmt_ms(a)),
                verdict(None if r is None else r >= 0.95)))
    mem = res["memory"]
    wb = res["weight_bytes"]
    act = activation_bytes(SHAPES["8x512"])
    bound = 1.3 * wb + act
    f = mem.get("fp32", {})
    lib = f.get("library", {})
    if f.get("server_serving_peak_kb"):
        load_peak = f.get("server_load_peak_kb") or 0
        serve_peak = f["server_serving_peak_kb"]
        what = "server"
    elif lib.get("ok"):
        load_peak, serve_peak, what = lib["load_peak_kb"], lib["forward_peak_kb"], "library"
    else:
        serve_peak = None
    if serve_peak:
        peak = max(load_peak, serve_peak) * 1024
        out.append(("fp32 peak RSS ≤ 1.3 × weights + activations of the largest batch",
                    "%s peak %.0f MB (during load %.0f MB, serving %.0f MB) vs %.0f MB "
                    "(1.3 × %.0f + %.0f)" % (what, peak / 1e6, load_peak * 1024 / 1e6,
                                             serve_peak * 1024 / 1e6, bound / 1e6, wb / 1e6,
                                             act / 1e6),
                    verdict(peak <= bound)))
    else:
        out.append(("fp32 peak RSS ≤ 1.3 × weights + activations of the largest batch",
                    "n/a", "n/a"))

    def weights_mb(p):
        lib = mem.get(p, {}).get("library", {})
        if not lib.get("ok"):
            return None
        return (lib["after_load_kb"] - lib["before_load_kb"]) * 1024 / 1e6

    wf, wbf = weights_mb("fp32"), weights_mb("bf16")
    r = ratio(wbf, wf)
    out.append(("bf16 weight memory ≤ 0.65× fp32's",
                "%s (%.0f MB vs %.0f MB)" % (fmt_ratio(r), wbf, wf) if r else
                "not available", verdict(None if r is None else r <= 0.65)))
    return out


# ------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--model-dir", default=os.path.join(HERE, "out", "bert-base"))
    ap.add_argument("--onnx", default=os.path.join(HERE, "out", "bert-base.onnx"))
    ap.add_argument("--family-dir", default=os.path.join(HERE, "out"),
                    help="where bench/make_family_models.py wrote roberta-base, "
                         "distilbert-base and their .onnx files")
    ap.add_argument("--quick", action="store_true", help="2 rounds, fewer calls, no server RSS")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--systems", default="", help="comma list to keep (default: all)")
    ap.add_argument("--shapes", default="", help="comma list to keep (default: all)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--retry-noisy", type=float, default=0.25,
                    help="rerun a segment once if other processes used more than this share "
                         "of the CPUs during it, keep the quieter (0 = off)")
    ap.add_argument("--command", default=None, help="command line shown in the report")
    ap.add_argument("--server-build-failed", metavar="LOG", default="",
                    help="(from run.sh) attnserve did not build: skip the gRPC runs")
    ap.add_argument("--rerender", metavar="RESULTS_JSON",
                    help="print the report of an earlier run's results.json and exit")
    args = ap.parse_args()
    if args.rerender:
        with open(args.rerender) as f:
            print(report(json.load(f)))
        return
    rounds = args.rounds or (2 if args.quick else 5)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(HERE, "out", "runs", stamp)
    os.makedirs(outdir, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    shapes = [s for s in SHAPES if not args.shapes or s in args.shapes.split(",")]
    order = shapes + (["8x128+attn"] if "8x128" in shapes else [])

    res = {
        "command": args.command or " ".join(shlex.quote(a) for a in sys.argv),
        "started": time.strftime("%Y-%m-%d %H:%M"),
        "machine": "%d cores (%s), OMP_NUM_THREADS=2" % (os.cpu_count(), cpu_name()),
        "loadavg_before": loadavg(), "rounds": rounds, "quick": args.quick,
        "shapes": shapes, "weight_bytes": weight_bytes(args.model_dir),
        "cpu": cpu_name(), "cpu_flags": cpu_flags(),
    }
    t_start = time.time()
    ceiling = Worker("ceiling", [os.path.join(args.build, "bin", "encoder_bench"), "--worker"],
                     env, outdir)
    if not ceiling.start():
        log("ceiling matmul worker failed: %s" % ceiling.error)
        ceiling = None
    systems, server = make_systems(args, env, outdir)
    try:
        res["checks"] = run_checks(systems, ceiling, os.path.join(outdir, "check"))
        samples, foreign, errors = run_rounds(systems, ceiling, rounds, args.quick, order,
                                              args.retry_noisy)
        res["samples"], res["foreign"], res["errors"] = samples, foreign, errors
        if server is not None:
            res["grpc_server_fp32_vmhwm_kb"] = server.status_kb("VmHWM")
            if server.proc.poll() is not None:
                res["grpc_server_died"] = server.exit_message()
    finally:
        for s in systems.values():
            if s["worker"] is not None:
                s["worker"].stop()
        if ceiling:
            ceiling.stop()
        if server is not None:
            server.stop()
    res["systems"] = {n: {"error": s["error"], "info": s["info"]} for n, s in systems.items()}
    res["memory"] = {} if args.no_memory else run_memory(
        args, env, outdir, ["fp32", "bf16", "int8"],
        with_server=not args.quick and not args.server_build_failed)
    res["loadavg_after"] = loadavg()
    res["seconds"] = round(time.time() - t_start)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = report(res)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(md + "\n")
    print(md)
    log("%.0f s; results in %s" % (time.time() - t_start, outdir))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_flags():
    """The /proc/cpuinfo flags that decide the kernels (AMX, AVX-512 BF16/VNNI, AVX2)."""
    want = ["amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f",
            "avx2"]
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return " ".join(x if x in have else "no " + x for x in want)
    except OSError:
        pass
    return "?"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    main()
