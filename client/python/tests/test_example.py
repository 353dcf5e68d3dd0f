"""client/python_example.py, a short use of the package, keeps its flags:
run with the venv's python (the installed package) and with Debian's
/usr/bin/python3 from the checkout (the package beside it)."""

import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLE = os.path.join(REPO, "client", "python_example.py")


def run(python, *args):
    env = dict(os.environ)
    env.pop("ATTNSERVE_TOKEN", None)
    return subprocess.run([python, EXAMPLE, *args], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize("python", [sys.executable, "/usr/bin/python3"],
                         ids=["venv", "checkout"])
def test_text_with_layers(server, python):
    r = run(python, "--target", server.address, "--text", "the cat sat",
            "--layers", "1")
    assert r.returncode == 0, r.stderr
    assert "model tiny_bert: 2 layers, 4 heads, hidden 32" in r.stdout
    assert "hidden_states (5, 32) float32" in r.stdout
    assert "attention (1, 4, 5, 5) float32" in r.stdout
    assert "tokens: [CLS] the cat sat [SEP]" in r.stdout
    assert r.stdout.count("  layer 1 head ") == 4


def test_ids_heads_fp16(server):
    r = run(sys.executable, "--target", server.address, "--ids", "2,15,27,3",
            "--heads", "0,2", "--fp16", "--lb", "pick_first")
    assert r.returncode == 0, r.stderr
    assert "attention (2, 2, 4, 4) float16" in r.stdout
    assert "  layer 1 head 2: strongest " in r.stdout


def test_a_failed_call_exits_1_with_code_and_message(server):
    r = run(sys.executable, "--target", server.address, "--ids", "2,500,3")
    assert r.returncode == 1
    assert r.stderr.startswith("python_example: INVALID_ARGUMENT: ")
