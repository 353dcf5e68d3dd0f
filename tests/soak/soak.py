#!/usr/bin/python3
"""Load and fault driver for attnserve: real server processes on 127.0.0.1.

Each scenario starts its own `attnserve` (on a demo model from
make_demo_model unless --model is given), drives it from Python gRPC clients
(Debian's python3-grpcio; stubs generated with protoc and
grpc_python_plugin as client/python_example.py does) and prints one verdict
line:

    soak: <scenario>: PASS|FAIL <figures>

Scenarios (all by default; pick some with --scenarios a,b):
  mixed           32 clients, mixed traffic for --duration seconds: valid
                  Encode (with and without attention and statistics),
                  Tokenize, small RankHeads, invalid ids, oversized sequences,
                  responses over the budget, calls cancelled mid-flight and
                  1-ms deadlines. Every call must end with its documented
                  status, within its deadline + 1 s; every OK Encode must be
                  bit-identical to the same request run alone before the
                  load; health must stay SERVING. RSS is sampled every second:
                  with --duration >= 180 the RSS at minute 3 must be within
                  5 % of the RSS at minute 1 (medians of the 30 s before).
  overload        --max_queue_requests=4 and a flood of heavy calls: the
                  refused ones get RESOURCE_EXHAUSTED quickly (not a
                  deadline), the accepted ones are answered correctly.
  sigterm         SIGTERM under load: calls end OK (correct) or UNAVAILABLE,
                  nothing else (but for the CANCELLED that gRPC core gives a
                  call arriving in the instant its shutdown begins, which our
                  code never sees); the requests the server ran equal the OK
                  answers; calls after it are UNAVAILABLE; exit 0 within the
                  grace period.
  kill9           kill -9 under load: clients see UNAVAILABLE, never a wrong
                  answer; after a restart on the same port, health is SERVING
                  and the answers are bit-identical to the earlier ones.
  bad_checkpoints broken model directories (tests/soak/bad_checkpoints.py):
                  each makes attnserve exit 1 within seconds with one line
                  naming the file and the problem, without a crash and with a
                  bounded peak RSS.
  determinism     fp32, bf16 and int8: each request alone, then all of them
                  concurrently (batched by the server): bit-identical.

Usage (from the repository root, after scripts/build.sh):

    /usr/bin/python3 tests/soak/soak.py                  # CI: 20 s of mixed load
    /usr/bin/python3 tests/soak/soak.py --duration 200   # the long form (RSS)

Exit status 0 when every scenario passes. Bounded: every wait has a timeout.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import grpc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bad_checkpoints  # noqa: E402

pb = None
pb_grpc = None

SERVING = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}


def load_stubs(tmp):
    global pb, pb_grpc
    proto_dir = os.path.join(REPO, "proto")
    subprocess.run(
        ["protoc", f"--proto_path={proto_dir}", f"--python_out={tmp}",
         f"--grpc_out={tmp}",
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
         os.path.join(proto_dir, "attnserve.proto")], check=True)
    sys.path.insert(0, tmp)
    import attnserve_pb2  # noqa: E402
    import attnserve_pb2_grpc  # noqa: E402
    pb, pb_grpc = attnserve_pb2, attnserve_pb2_grpc


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


# ---- the server process ------------------------------------------------------

class Server:
    """One attnserve process; its stderr is collected in a thread."""

    def __init__(self, binary, model, flags=(), port=0, log_dir=None, name="server",
                 env=None):
        self.lines = []
        self.port = None
        args = [binary, f"--model={model}", f"--address=127.0.0.1:{port}", *flags]
        self.log = open(os.path.join(log_dir, name + ".log"), "a") if log_dir else None
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     env=dict(os.environ, **(env or {})))
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if self.log:
                self.log.write(line + "\n")
                self.log.flush()
            m = re.search(r"serving .* on .*:(\d+)$", line)
            if m:
                self.port = int(m.group(1))
                self.ready.set()
        self.ready.set()

    def wait_ready(self, timeout=60):
        if not self.ready.wait(timeout) or self.port is None:
            raise RuntimeError("attnserve did not start: " + " | ".join(self.lines[-5:]))
        return self

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.reader.join(5)

    def requests_run(self):
        for line in self.lines:
            m = re.search(r"stopped after (\d+) requests in (\d+) forward passes", line)
            if m:
                return int(m.group(1)), int(m.group(2))
        return None


def has_flag(binary, flag):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return f"--{flag}" in out.stdout + out.stderr


def health(channel, timeout=2.0):
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda x: x,
                                response_deserializer=lambda x: x)
    try:
        return check(b"", timeout=timeout) == SERVING
    except grpc.RpcError:
        return False


def wait_serving(target, timeout=60):
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        while time.monotonic() < deadline:
            if health(channel):
                return True
            time.sleep(0.2)
    return False


# ---- requests ------------------------------------------------------------------

class Workload:
    """Requests for the served model, and their answers when run alone."""

    def __init__(self, info, seed=1):
        self.info = info
        self.rng = random.Random(seed)
        self.vocab = info.vocab_size
        self.max_t = info.max_position_embeddings
        self.layers = info.num_layers
        self.heads = info.num_heads

    def ids(self, length, rng=None):
        rng = rng or self.rng
        return [2] + [rng.randrange(5, self.vocab) for _ in range(length - 2)] + [3]

    def encode_set(self, n, with_attention):
        """n valid Encode requests of varied shapes."""
        out = []
        for k in range(n):
            req = pb.EncodeRequest()
            for _ in range(1 + k % 3):
                length = self.rng.choice([3, 5, 8, 16, 33, 64, self.max_t])
                req.sequences.add().token_ids.extend(self.ids(length))
            req.pooling = [pb.POOLING_MEAN, pb.POOLING_CLS][k % 2]
            if with_attention and k % 2 == 0:
                req.attention.layers.extend([0, self.layers - 1])
                req.attention.heads.extend([1, 0])
                if k % 4 == 0:
                    req.attention.stats = True
                    req.attention.dtype = pb.FLOAT16
            out.append(req)
        return out


def answer_bytes(resp):
    """What must be identical between two answers to one request."""
    parts = []
    for r in resp.results:
        parts.append(bytes(r.embedding.data))
        parts.append(bytes(r.attention.data))
        parts.append(bytes(r.hidden_states.data))
        parts.append(b"".join(h.SerializeToString() for h in r.head_stats))
    return b"|".join(parts)


def references(stub, requests, timeout=60):
    """Each request alone, one at a time."""
    return [answer_bytes(stub.Encode(r, timeout=timeout)) for r in requests]


# ---- scenario: mixed -----------------------------------------------------------

EXPECTED = {
    "encode": {"OK"},
    "encode_attention": {"OK"},
    "tokenize": {"OK"},
    "rank_heads": {"OK"},
    "invalid_ids": {"INVALID_ARGUMENT"},
    "oversized": {"INVALID_ARGUMENT"},
    "over_budget": {"RESOURCE_EXHAUSTED"},
    "cancel": {"CANCELLED", "OK"},
    "deadline_1ms": {"DEADLINE_EXCEEDED", "OK"},
}
KINDS = list(EXPECTED)


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}      # (kind, code) -> n
        self.latency = {}     # kind -> [seconds]
        self.problems = []    # first few descriptions

    def add(self, kind, code, seconds, problem=None):
        with self.lock:
            self.counts[(kind, code)] = self.counts.get((kind, code), 0) + 1
            self.latency.setdefault(kind, []).append(seconds)
            if problem and len(self.problems) < 10:
                self.problems.append(problem)

    def by_code(self):
        out = {}
        for (_, code), n in self.counts.items():
            out[code] = out.get(code, 0) + n
        return out


def run_mixed(args, tmp):
    flags = ["--max_response_bytes=1000000", "--max_tokens_per_request=4096",
             *args.mixed_flags,
             "--max_rank_heads_tokens=4000"]
    # glibc raises its mmap threshold to the largest block freed so far, so
    # after a peak of large transient buffers (responses, pass outputs) they
    # stay on the heap and RSS keeps the peak: a fixed threshold makes RSS
    # follow what is in use, which is what a leak check needs (RELIABILITY.md
    # has the runs with and without it).
    server = Server(args.attnserve, args.model_dir, flags, log_dir=tmp, name="mixed",
                    env={"MALLOC_MMAP_THRESHOLD_": "131072"}).wait_ready()
    channel = grpc.insecure_channel(server.target)
    stub = pb_grpc.EncoderStub(channel)
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    work = Workload(info, seed=11)
    valid = work.encode_set(24, with_attention=True)
    refs = references(stub, valid)
    timeout_s = 30.0
    tally = Tally()
    stop = threading.Event()
    wrong = []

    def call(kind, stub, rng):
        t0 = time.monotonic()
        problem = None
        code = "OK"
        try:
            if kind in ("encode", "encode_attention"):
                k = rng.randrange(len(valid))
                if kind == "encode_attention" and not valid[k].HasField("attention"):
                    k = (k // 2) * 2
                resp = stub.Encode(valid[k], timeout=timeout_s)
                if answer_bytes(resp) != refs[k]:
                    problem = f"{kind}: request {k} answered differently than alone"
                    wrong.append(problem)
            elif kind == "tokenize":
                req = pb.TokenizeRequest()
                req.sequences.add().text = "the quick brown fox jumps over the lazy dog"
                resp = stub.Tokenize(req, timeout=timeout_s)
                if len(resp.results) != 1 or len(resp.results[0].token_ids) < 3:
                    problem = "tokenize: bad answer"
            elif kind == "rank_heads":
                req = pb.RankHeadsRequest()
                req.sequences.add().token_ids.extend(work.ids(6, rng))
                resp = stub.RankHeads(req, timeout=timeout_s)
                if len(resp.heads) != work.layers * work.heads:
                    problem = "rank_heads: wrong number of heads"
            elif kind == "invalid_ids":
                req = pb.EncodeRequest()
                req.sequences.add().token_ids.extend([2, work.vocab + rng.randrange(1, 1000), 3])
                stub.Encode(req, timeout=timeout_s)
            elif kind == "oversized":
                req = pb.EncodeRequest()
                req.sequences.add().token_ids.extend(work.ids(work.max_t + 1, rng))
                stub.Encode(req, timeout=timeout_s)
            elif kind == "over_budget":
                req = pb.EncodeRequest()
                for _ in range(8):
                    req.sequences.add().token_ids.extend(work.ids(work.max_t, rng))
                req.attention.SetInParent()  # every layer and head: ~16 MB
                stub.Encode(req, timeout=timeout_s)
            elif kind == "cancel":
                fut = stub.Encode.future(valid[rng.randrange(len(valid))], timeout=timeout_s)
                time.sleep(rng.uniform(0, 0.02))
                fut.cancel()
                try:
                    fut.result(timeout=timeout_s + 1)
                except grpc.FutureCancelledError:
                    code = "CANCELLED"
            elif kind == "deadline_1ms":
                stub.Encode(valid[rng.randrange(len(valid))], timeout=0.001)
        except grpc.RpcError as e:
            code = e.code().name
        elapsed = time.monotonic() - t0
        limit = (0.001 if kind == "deadline_1ms" else timeout_s) + 1.0
        if elapsed > limit:
            problem = f"{kind}: took {elapsed:.2f} s, past its deadline + 1 s"
        if code not in EXPECTED[kind]:
            problem = problem or f"{kind}: {code}"
        tally.add(kind, code, elapsed, problem)

    def client(i):
        rng = random.Random(1000 + i)
        with grpc.insecure_channel(server.target) as ch:
            st = pb_grpc.EncoderStub(ch)
            while not stop.is_set():
                call(rng.choice(KINDS), st, rng)

    rss = []            # (seconds since start, kB)
    unhealthy = []

    def monitor():
        start = time.monotonic()
        with grpc.insecure_channel(server.target) as ch:
            while not stop.wait(1.0):
                rss.append((time.monotonic() - start, rss_kb(server.proc.pid)))
                if not health(ch, timeout=5):
                    unhealthy.append(time.monotonic() - start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    mon = threading.Thread(target=monitor)
    t_start = time.monotonic()
    for t in threads + [mon]:
        t.start()
    time.sleep(args.duration)
    stop.set()
    for t in threads + [mon]:
        t.join(timeout_s + 5)
    hung = sum(t.is_alive() for t in threads)
    wall = time.monotonic() - t_start
    channel.close()
    rc = server.stop()

    def rss_at(sec):
        """Median RSS over the 30 s before `sec`: what is in flight moves one
        sample by ±5 % at this size (~80 MB)."""
        near = [kb for s, kb in rss if sec - 30 <= s <= sec and kb]
        return int(statistics.median(near)) if near else None

    r1, r3 = rss_at(60), rss_at(180)
    rss_ok = True
    rss_text = f"RSS end {rss[-1][1] // 1024 if rss and rss[-1][1] else '?'} MB"
    if r1 and r3:
        growth = (r3 - r1) / r1
        rss_ok = abs(growth) <= 0.05
        rss_text = f"RSS 1 min {r1 // 1024} MB, 3 min {r3 // 1024} MB ({growth:+.1%})"
        last = int(wall // 60)
        r_last = rss_at(60 * last) if last > 3 else None
        if r_last:
            rss_text += f", {last} min {r_last // 1024} MB ({(r_last - r1) / r1:+.1%})"
    elif r1:
        rss_text += f", 1 min {r1 // 1024} MB"
    total = sum(tally.counts.values())
    lat_all = [x for v in tally.latency.values() for x in v]
    ok_lat = [x for k in ("encode", "encode_attention") for x in tally.latency.get(k, [])]
    problems = tally.problems + ([f"{hung} client threads hung"] if hung else []) \
        + ([f"health not SERVING at {unhealthy[:3]} s"] if unhealthy else []) \
        + ([f"server exit {rc}"] if rc != 0 else [])
    passed = not problems and rss_ok and not wrong
    figures = {
        "calls": total, "seconds": round(wall, 1), "calls_per_s": round(total / wall, 1),
        "by_status": tally.by_code(),
        "by_kind": {f"{k}:{c}": n for (k, c), n in sorted(tally.counts.items())},
        "p50_ms": round(1000 * percentile(lat_all, 50), 1),
        "p99_ms": round(1000 * percentile(lat_all, 99), 1),
        "encode_p50_ms": round(1000 * percentile(ok_lat, 50), 1),
        "encode_p99_ms": round(1000 * percentile(ok_lat, 99), 1),
        "rss_kb": {"1min": r1, "3min": r3, "end": rss[-1][1] if rss else None},
        # Every whole minute of a long run, measured as minutes 1 and 3 are.
        "rss_by_minute_kb": {m: rss_at(60 * m) for m in range(1, int(wall // 60) + 1)},
        "rss_every_10s_kb": [kb for s, kb in rss if int(s) % 10 == 0],
        "wrong_answers": len(wrong),
    }
    codes = ", ".join(f"{c} {n}" for c, n in sorted(tally.by_code().items()))
    verdict(args, "mixed", passed,
            f"{total} calls in {wall:.0f} s ({codes}); p50 {figures['p50_ms']} ms, "
            f"p99 {figures['p99_ms']} ms; {len(wrong)} wrong answers; {rss_text}",
            problems, figures)


# ---- scenario: overload --------------------------------------------------------

def run_overload(args, tmp):
    flags = ["--max_queue_requests=4", "--max_batch_tokens=256"]
    server = Server(args.attnserve, args.model_dir, flags, log_dir=tmp, name="overload").wait_ready()
    stub = pb_grpc.EncoderStub(grpc.insecure_channel(server.target))
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    work = Workload(info, seed=5)
    heavy = []
    for k in range(8):
        req = pb.EncodeRequest()
        for _ in range(8):
            req.sequences.add().token_ids.extend(work.ids(work.max_t))
        req.return_hidden_states = True
        heavy.append(req)
    refs = references(stub, heavy)
    results = []
    lock = threading.Lock()

    def flood(i):
        with grpc.insecure_channel(server.target) as ch:
            st = pb_grpc.EncoderStub(ch)
            futs = []
            for j in range(25):
                k = (i + j) % len(heavy)
                # Each call's own time, taken when it completes: read after
                # the calls before it in this list (an accepted heavy call
                # takes seconds on a loaded box), a refusal looked slow.
                done = {"t0": time.monotonic()}
                fut = st.Encode.future(heavy[k], timeout=60)
                fut.add_done_callback(lambda f, d=done: d.setdefault("t1", time.monotonic()))
                futs.append((k, done, fut))
            for k, done, fut in futs:
                try:
                    resp = fut.result()
                    code = "OK" if answer_bytes(resp) == refs[k] else "WRONG"
                except grpc.RpcError as e:
                    code = e.code().name
                end = done.get("t1", time.monotonic())
                with lock:
                    results.append((code, end - done["t0"]))

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    wall = time.monotonic() - t0
    rc = server.stop()
    codes = {}
    for c, _ in results:
        codes[c] = codes.get(c, 0) + 1
    refused = [s for c, s in results if c == "RESOURCE_EXHAUSTED"]
    problems = []
    if not refused:
        problems.append("nothing was refused")
    if set(codes) - {"OK", "RESOURCE_EXHAUSTED"}:
        problems.append(f"unexpected statuses {codes}")
    if codes.get("OK", 0) == 0:
        problems.append("nothing was accepted")
    # Quick next to the 60 s deadline the calls carry: a refusal is never a
    # wait for the deadline. (Under CPU contention from other processes the
    # slowest refusal here has taken 1.1 s; the median stays ~15 ms.)
    if refused and (max(refused) > 5.0 or percentile(refused, 50) > 0.5):
        problems.append(f"refusals too slow: p50 {percentile(refused, 50):.2f} s, "
                        f"max {max(refused):.2f} s")
    if rc != 0:
        problems.append(f"server exit {rc}")
    figures = {"calls": len(results), "by_status": codes, "seconds": round(wall, 1),
               "refusal_p50_ms": round(1000 * percentile(refused, 50), 1),
               "refusal_max_ms": round(1000 * max(refused), 1) if refused else None}
    verdict(args, "overload", not problems,
            f"{len(results)} calls: {codes}; refusals p50 {figures['refusal_p50_ms']} ms, "
            f"max {figures['refusal_max_ms']} ms; accepted ones bit-identical to alone",
            problems, figures)


# ---- scenario: sigterm ---------------------------------------------------------

def run_under_load(server, requests, refs, n_threads, stop, record):
    """Threads sending requests until `stop`; record(code, t_start, t_end, details)."""
    def worker(i):
        rng = random.Random(i)
        with grpc.insecure_channel(server.target) as ch:
            st = pb_grpc.EncoderStub(ch)
            while not stop.is_set():
                k = rng.randrange(len(requests))
                t0 = time.monotonic()
                details = ""
                try:
                    resp = st.Encode(requests[k], timeout=30, wait_for_ready=False)
                    code = "OK" if answer_bytes(resp) == refs[k] else "WRONG"
                except grpc.RpcError as e:
                    code, details = e.code().name, e.details()
                record(code, t0, time.monotonic(), details)
                if code != "OK":
                    time.sleep(0.05)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    return threads


def start_load(server, seed, with_attention):
    """12 reference answers, then 16 clients repeating those requests; after 3 s of
    load returns (requests, references, calls, stop event, client threads), where
    calls collects (code, start, end, details) of every call."""
    stub = pb_grpc.EncoderStub(grpc.insecure_channel(server.target))
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    requests = Workload(info, seed=seed).encode_set(12, with_attention=with_attention)
    refs = references(stub, requests)
    calls = []
    lock = threading.Lock()

    def record(code, t0, t1, details):
        with lock:
            calls.append((code, t0, t1, details))

    stop = threading.Event()
    threads = run_under_load(server, requests, refs, 16, stop, record)
    time.sleep(3)
    return requests, refs, calls, stop, threads


def run_sigterm(args, tmp):
    grace = 10
    flags = [f"--shutdown_grace={grace}s"]
    drain = 0
    if has_flag(args.attnserve, "drain_delay"):
        drain = 1
        flags.append(f"--drain_delay={drain}s")
    server = Server(args.attnserve, args.model_dir, flags, log_dir=tmp, name="sigterm").wait_ready()
    requests, refs, calls, stop, threads = start_load(server, seed=7, with_attention=False)
    t_term = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        rc = server.proc.wait(grace + drain + 20)
    except subprocess.TimeoutExpired:
        rc = None
    t_exit = time.monotonic()
    time.sleep(1.5)  # calls after the exit
    stop.set()
    for t in threads:
        t.join(40)
    if rc is None:
        rc = server.stop(signal.SIGKILL)
    server.reader.join(5)
    codes = {}
    for c, *_ in calls:
        codes[c] = codes.get(c, 0) + 1
    after_exit = [c for c, t0, *_ in calls if t0 > t_exit]
    ran = server.requests_run()
    ok = codes.get("OK", 0)
    problems = []
    # gRPC core (1.51, still so in 2026: grpc/grpc issue 41785) ends a call
    # that reaches the server after its Shutdown began, before the client has
    # read the GOAWAY, with CANCELLED "CANCELLED" instead of UNAVAILABLE. Our
    # code never sees such a call; the request count below proves none of them
    # ran. They are allowed only in that instant: ended within 1 s after the
    # drain delay, lasted at most 1 s (seen: 1-4 ms; the slack is for a loaded
    # CI machine), with exactly gRPC core's message. A call of ours that we
    # dropped would have waited in the queue for longer, or been cancelled
    # only after every call of ours was answered (Server::Shutdown).
    t_stop = t_term + drain
    core_refused = [(t0, t1) for c, t0, t1, d in calls if c == "CANCELLED" and
                    d == "CANCELLED" and t_stop <= t1 <= t_stop + 1 and t1 - t0 <= 1]
    others = dict(codes)
    if core_refused:
        others["CANCELLED"] -= len(core_refused)
        if not others["CANCELLED"]:
            del others["CANCELLED"]
    if set(others) - {"OK", "UNAVAILABLE"}:
        odd = sorted({(c, d) for c, _, _, d in calls if c not in ("OK", "UNAVAILABLE")})
        problems.append(f"statuses other than OK/UNAVAILABLE: {codes} {odd}")
    if rc != 0:
        problems.append(f"exit status {rc}")
    if t_exit - t_term > grace + drain:
        problems.append(f"exit {t_exit - t_term:.1f} s after SIGTERM (grace {grace} s)")
    if not after_exit or set(after_exit) != {"UNAVAILABLE"}:
        problems.append(f"calls after exit: {sorted(set(after_exit))}")
    # References were 12 calls run before the load.
    if ran is not None and ran[0] != ok + len(requests):
        problems.append(f"server ran {ran[0]} requests, clients got {ok} + "
                        f"{len(requests)} OK answers")
    in_flight = sum(1 for c, t0, t1, _ in calls if t0 < t_term < t1)
    figures = {"by_status": codes, "exit_status": rc,
               "exit_after_s": round(t_exit - t_term, 2), "in_flight_at_sigterm": in_flight,
               "server_requests_run": ran[0] if ran else None, "drain_delay_s": drain,
               "cancelled_by_grpc_core_at_stop": len(core_refused)}
    core_note = (f" ({len(core_refused)} CANCELLED by gRPC core as its shutdown began, "
                 f"never run)" if core_refused else "")
    verdict(args, "sigterm", not problems,
            f"{in_flight} calls in flight at SIGTERM; {codes}{core_note}; exit {rc} after "
            f"{t_exit - t_term:.2f} s (grace {grace} s); server ran "
            f"{ran[0] if ran else '?'} requests = {ok} OK + {len(requests)} references; "
            f"{len(after_exit)} calls after exit all UNAVAILABLE",
            problems, figures)


# ---- scenario: kill9 -----------------------------------------------------------

def run_kill9(args, tmp):
    server = Server(args.attnserve, args.model_dir, [], log_dir=tmp, name="kill9").wait_ready()
    port = server.port
    requests, refs, calls, stop, threads = start_load(server, seed=9, with_attention=True)
    t_kill = time.monotonic()
    server.proc.send_signal(signal.SIGKILL)
    rc = server.proc.wait(30)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(40)
    t_restart = time.monotonic()
    again = Server(args.attnserve, args.model_dir, [], port=port, log_dir=tmp,
                   name="kill9_restart").wait_ready()
    serving = wait_serving(again.target, 60)
    t_serving = time.monotonic()
    with grpc.insecure_channel(again.target) as ch:
        after = references(pb_grpc.EncoderStub(ch), requests)
    same = sum(a == b for a, b in zip(after, refs))
    rc2 = again.stop()
    codes = {}
    for c, *_ in calls:
        codes[c] = codes.get(c, 0) + 1
    after_kill = {c for c, t0, t1, _ in calls if t1 > t_kill}
    problems = []
    if "WRONG" in codes:
        problems.append(f"{codes['WRONG']} wrong answers")
    if after_kill - {"OK", "UNAVAILABLE"}:
        problems.append(f"after the kill: {sorted(after_kill)}")
    if "UNAVAILABLE" not in after_kill:
        problems.append("no UNAVAILABLE after the kill")
    if rc != -signal.SIGKILL:
        problems.append(f"kill status {rc}")
    if not serving:
        problems.append("restarted server not SERVING")
    if same != len(refs):
        problems.append(f"{len(refs) - same} answers differ after the restart")
    if rc2 != 0:
        problems.append(f"restarted server exit {rc2}")
    figures = {"by_status": codes, "after_kill": sorted(after_kill),
               "restart_to_serving_s": round(t_serving - t_restart, 2),
               "identical_after_restart": f"{same}/{len(refs)}"}
    verdict(args, "kill9", not problems,
            f"{codes}; after kill -9: {sorted(after_kill)}; restarted on port {port}, "
            f"SERVING after {t_serving - t_restart:.1f} s; {same}/{len(refs)} answers "
            f"bit-identical to before", problems, figures)


# ---- scenario: bad checkpoints -------------------------------------------------

def run_bad_checkpoints(args, tmp):
    corpus = os.path.join(tmp, "bad_checkpoints")
    cases = bad_checkpoints.write_corpus(os.path.join(REPO, "tests", "data", "tiny_bert"), corpus)
    rows = []
    problems = []
    for case in cases:
        rc, err, seconds, peak_kb, timed_out = run_child(
            [args.attnserve, f"--model={case.dir}", "--address=127.0.0.1:0"], 30,
            stop_on=r"attnserve: serving ")
        lines = [l for l in err.decode(errors="replace").splitlines() if l.strip()]
        if case.expect == "serve":
            ok = timed_out and rc == 0 and any("serving token ids only" in l for l in lines)
            outcome = "serves token ids only; exit 0 on SIGTERM" if ok else f"exit {rc}"
            message = next((l for l in lines if "tokenizer" in l), "")
        else:
            message = lines[-1] if lines else ""
            ok = (not timed_out and rc == 1 and len(lines) == 1 and seconds < 10
                  and case.names in message and peak_kb < 512 * 1024)
            outcome = f"exit {rc}" if not timed_out else "did not exit"
        if not ok:
            problems.append(f"{case.name}: {outcome}, {len(lines)} lines: {message[:200]}")
        rows.append({"case": case.name, "what": case.what, "outcome": outcome,
                     "seconds": round(seconds, 2), "lines": len(lines),
                     "peak_rss_mb": round(peak_kb / 1024),
                     "message": message, "pass": ok})
    table = os.path.join(tmp, "bad_checkpoints.md")
    with open(table, "w") as f:
        f.write("| case | what | outcome | s | peak RSS MB | stderr |\n"
                "|---|---|---|---|---|---|\n")
        for r in rows:
            msg = r["message"].replace(corpus + "/", "").replace("|", "\\|")
            f.write(f"| {r['case']} | {r['what']} | {r['outcome']} | {r['seconds']} | "
                    f"{r['peak_rss_mb']} | `{msg}` |\n")
    verdict(args, "bad_checkpoints", not problems,
            f"{sum(r['pass'] for r in rows)}/{len(rows)} cases as expected; slowest "
            f"{max(r['seconds'] for r in rows):.2f} s; table in {table}",
            problems, {"rows": rows})


def run_child(argv, timeout, stop_on=None):
    """Runs argv; SIGTERM after `timeout` s, or as soon as a stderr line
    matches `stop_on`. Returns (exit status, stderr bytes, seconds, peak RSS
    in kB of that child alone, whether it was stopped)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chunks = []
    stopped = threading.Event()

    def stop():
        stopped.set()
        proc.send_signal(signal.SIGTERM)

    def read():
        for line in proc.stderr:
            chunks.append(line)
            if stop_on and re.search(stop_on, line.decode(errors="replace")):
                stop()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timer = threading.Timer(timeout, stop)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    return proc.returncode, b"".join(chunks), seconds, usage.ru_maxrss, stopped.is_set()


# ---- scenario: determinism -----------------------------------------------------

def run_determinism(args, tmp):
    problems = []
    figures = {}
    for precision in ("fp32", "bf16", "int8"):
        server = Server(args.attnserve, args.model_dir, [f"--precision={precision}"],
                        log_dir=tmp, name="determinism_" + precision).wait_ready()
        stub = pb_grpc.EncoderStub(grpc.insecure_channel(server.target))
        info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
        work = Workload(info, seed=3)
        requests = work.encode_set(16, with_attention=True)
        # One more request whose activations differ in scale from the others'.
        loud = pb.EncodeRequest()
        loud.sequences.add().token_ids.extend([2] + [7] * 60 + [3])
        requests.append(loud)
        for r in requests:
            r.return_hidden_states = True
        refs = references(stub, requests)
        differ = 0
        total = 0
        for _ in range(3):
            order = list(range(len(requests))) * 2
            random.Random(len(order)).shuffle(order)
            futs = [(k, stub.Encode.future(requests[k], timeout=60)) for k in order]
            for k, fut in futs:
                total += 1
                if answer_bytes(fut.result()) != refs[k]:
                    differ += 1
        rc = server.stop()
        ran = server.requests_run()
        figures[precision] = {"calls": total, "differ": differ,
                              "requests": ran[0] if ran else None,
                              "passes": ran[1] if ran else None}
        if differ:
            problems.append(f"{precision}: {differ}/{total} batched answers differ from alone")
        if ran and ran[1] >= ran[0]:
            problems.append(f"{precision}: no batching happened ({ran[1]} passes "
                            f"for {ran[0]} requests)")
        if rc != 0:
            problems.append(f"{precision}: exit {rc}")
    summary = "; ".join(f"{p} {f['calls'] - f['differ']}/{f['calls']} identical "
                        f"({f['requests']} requests in {f['passes']} passes)"
                        for p, f in figures.items())
    verdict(args, "determinism", not problems, summary, problems, figures)


# ---- main ------------------------------------------------------------------------

RESULTS = {}


def verdict(args, name, passed, text, problems, figures):
    line = f"soak: {name}: {'PASS' if passed else 'FAIL'} {text}"
    print(line, flush=True)
    for p in problems[:10]:
        print(f"soak:   {name}: {p}", flush=True)
    RESULTS[name] = {"pass": passed, "summary": text, "problems": problems, "figures": figures}


SCENARIOS = {
    "mixed": run_mixed,
    "overload": run_overload,
    "sigterm": run_sigterm,
    "kill9": run_kill9,
    "bad_checkpoints": run_bad_checkpoints,
    "determinism": run_determinism,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attnserve", default=os.path.join(REPO, "build", "bin", "attnserve"))
    ap.add_argument("--make_demo_model",
                    default=os.path.join(REPO, "build", "bin", "make_demo_model"))
    ap.add_argument("--model", help="model directory (default: a fresh demo model)")
    ap.add_argument("--duration", type=float, default=20, help="seconds of mixed load")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--mixed_flags", default="",
                    help="extra attnserve flags for the mixed scenario, comma-separated")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--keep", help="keep logs and the bad-checkpoint table in this directory")
    args = ap.parse_args()
    args.mixed_flags = [f for f in args.mixed_flags.split(",") if f]
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    tmp = args.keep or tempfile.mkdtemp(prefix="attnserve_soak_")
    os.makedirs(tmp, exist_ok=True)
    try:
        load_stubs(tmp)
        if args.model:
            args.model_dir = args.model
        else:
            args.model_dir = os.path.join(tmp, "demo_model")
            subprocess.run([args.make_demo_model, args.model_dir], check=True,
                           stdout=subprocess.DEVNULL)
        for name in args.scenarios.split(","):
            t0 = time.monotonic()
            try:
                SCENARIOS[name](args, tmp)
            except Exception as e:  # a scenario that cannot run is a failure
                verdict(args, name, False, f"error: {e!r}", [repr(e)], {})
            RESULTS.setdefault(name, {})["seconds"] = round(time.monotonic() - t0, 1)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(RESULTS, f, indent=1)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [n for n, r in RESULTS.items() if not r.get("pass")]
    print(f"soak: {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
