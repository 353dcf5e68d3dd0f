"""Fixtures: a real attnserve process on tests/data/tiny_bert (2 layers,
4 heads, hidden 32, a 99-word vocab), started once per session on
127.0.0.1:0, and a Client connected to it.

ATTNSERVE_BIN names the server binary (run_tests.sh sets it; default
build/bin/attnserve); ATTNSERVE_REPO the repository root.
"""

import json
import os
import re
import signal
import subprocess
import threading
from typing import Callable, Iterator, List, Optional, TypeVar

import grpc
import pytest

import attnserve

REPO = os.environ.get("ATTNSERVE_REPO") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MODEL_DIR = os.path.join(REPO, "tests", "data", "tiny_bert")

T = TypeVar("T")


class ServerProcess:
    """`attnserve --address=127.0.0.1:0 flags...`; its port is read from its
    "serving ... on 127.0.0.1:PORT" line. stderr is drained by a thread (and
    kept in `log`) so that the pipe never fills."""

    def __init__(self, binary: str, flags: List[str], timeout: float = 60) -> None:
        self.log: List[str] = []
        self.port = 0
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [binary, "--address=127.0.0.1:0", "--drain_delay=0s"] + flags,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, errors="replace")
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(timeout) or not self.port:
            self.stop()
            raise RuntimeError(f"{binary} did not start serving:\n"
                               + "".join(self.log))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            m = re.search(r"serving .* on 127\.0\.0\.1:(\d+)", line)
            if m and not self.port:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()  # exited

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> Optional[int]:
        """SIGTERM (answer what was accepted, exit 0), SIGKILL after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def server_binary() -> str:
    binary = os.environ.get("ATTNSERVE_BIN") or os.path.join(
        REPO, "build", "bin", "attnserve")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no attnserve binary at {binary} (build it, or set "
                    "ATTNSERVE_BIN)")
    return binary


def server_help() -> str:
    """`attnserve --help`: which flags this server has."""
    r = subprocess.run([server_binary(), "--help"], capture_output=True,
                       text=True, timeout=60)
    return r.stdout + r.stderr


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    s = ServerProcess(server_binary(), [f"--model={MODEL_DIR}"])
    yield s
    assert s.stop() == 0, "attnserve did not exit 0 on SIGTERM:\n" + "".join(s.log)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[attnserve.Client]:
    with attnserve.Client(server.address, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def golden() -> dict:
    """tiny_bert's reference outputs (tools/gen_golden.py, float64)."""
    with open(os.path.join(MODEL_DIR, "golden.json"), encoding="utf-8") as f:
        return {s["name"]: s for s in json.load(f)["sequences"]}


def skip_if_unimplemented(what: str, call: Callable[[], T]) -> T:
    """Runs `call`; skips the test (instead of failing) while the server
    answers UNIMPLEMENTED for `what`: the test runs once the server has it."""
    try:
        return call()
    except attnserve.AttnserveError as e:
        if e.code == grpc.StatusCode.UNIMPLEMENTED:
            pytest.skip(f"the server answers UNIMPLEMENTED for {what}; "
                        "this test runs once it serves it")
        raise
