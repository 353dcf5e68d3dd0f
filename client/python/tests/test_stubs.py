"""The committed stubs in attnserve/proto are what proto/ generates now:
generate_stubs.sh into a temporary directory, byte for byte equal."""

import filecmp
import os
import shutil
import subprocess

import pytest

from conftest import REPO

HERE = os.path.join(REPO, "client", "python")
STUBS = ["attnserve_pb2.py", "attnserve_pb2_grpc.py", "inference_pb2.py",
         "inference_pb2_grpc.py"]


def test_committed_stubs_match_proto(tmp_path):
    for tool in ("protoc", "grpc_python_plugin"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (Debian: protobuf-compiler-grpc)")
    subprocess.run([os.path.join(HERE, "generate_stubs.sh"), str(tmp_path)],
                   check=True)
    for name in STUBS:
        committed = os.path.join(HERE, "attnserve", "proto", name)
        assert filecmp.cmp(committed, tmp_path / name, shallow=False), (
            f"attnserve/proto/{name} differs from what proto/ generates: run "
            "client/python/generate_stubs.sh and commit the result")
