"""Bearer tokens and TLS against real attnserve processes of their own
(--auth_tokens_file; --tls_cert/--tls_key, and --tls_client_ca for mTLS,
with certificates made by openssl), and the server's timing metadata."""

import os
import shutil
import subprocess

import grpc
import pytest

import attnserve
from conftest import MODEL_DIR, ServerProcess, server_binary, server_help

TOKEN = "0123456789abcdef-right"


def needs_flag(flag):
    if flag not in server_help():
        pytest.skip(f"this attnserve has no {flag}")


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    needs_flag("--auth_tokens_file")
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    tokens.write_text(f"{TOKEN}\nanother-token\n")
    s = ServerProcess(server_binary(), [f"--model={MODEL_DIR}",
                                        f"--auth_tokens_file={tokens}"])
    yield s
    s.stop()


def test_token_opens_every_rpc(token_server):
    with attnserve.Client(token_server.address, token=TOKEN) as c:
        assert c.info().num_layers == 2
        assert c.tokenize("the cat")[0].tokens[1] == "the"
        assert c.encode("the cat")[0].embedding.shape == (32,)
        assert c.infer("the cat", outputs=["embedding"])["embedding"].shape == (1, 32)
    with attnserve.Client(token_server.address, token="another-token") as c:
        assert c.info().num_heads == 4


@pytest.mark.parametrize("token", [None, "wrong"], ids=["none", "wrong"])
def test_no_or_wrong_token_is_unauthenticated(token_server, token):
    with attnserve.Client(token_server.address, token=token) as c:
        for call in (c.info, lambda: c.encode("the cat"),
                     lambda: c.infer("the cat")):
            with pytest.raises(attnserve.AttnserveError) as e:
                call()
            assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert TOKEN not in e.value.message


def test_timings_come_back_as_last_metadata(client):
    client.encode("the cat sat")
    timings = client.last_metadata
    if "x-total-time" not in timings:
        pytest.skip("this attnserve sends no timing metadata")
    assert timings["x-compute-tokens"] == "5"
    assert float(timings["x-total-time"]) >= float(timings["x-inference-time"])


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and localhost, and a client
    certificate, as README "TLS" makes them."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is missing (scripts/install_deps.sh --test)")
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-keyout", "ca.key", "-out",
            "ca.pem", "-subj", "/CN=test-ca", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        (d / f"{name}.ext").write_text(ext)
        openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out",
                f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)
    return d


@pytest.fixture(scope="module")
def mtls_server(certs):
    needs_flag("--tls_client_ca")
    s = ServerProcess(server_binary(), [
        f"--model={MODEL_DIR}", f"--tls_cert={certs / 'server.pem'}",
        f"--tls_key={certs / 'server.key'}",
        f"--tls_client_ca={certs / 'ca.pem'}"])
    yield s
    s.stop()


def test_mtls_with_files_and_with_pem_bytes(mtls_server, certs):
    tls = attnserve.TLS(ca=str(certs / "ca.pem"), cert=str(certs / "client.pem"),
                        key=str(certs / "client.key"))
    with attnserve.Client(mtls_server.address, tls=tls) as c:
        assert c.info().name == "tiny_bert"
    as_bytes = attnserve.TLS(ca=(certs / "ca.pem").read_bytes(),
                             cert=(certs / "client.pem").read_bytes(),
                             key=(certs / "client.key").read_bytes(),
                             server_name="localhost")
    with attnserve.Client(f"localhost:{mtls_server.port}", tls=as_bytes) as c:
        assert c.encode("the cat")[0].tokens == ["[CLS]", "the", "cat", "[SEP]"]


@pytest.mark.parametrize("case", ["plaintext", "no client certificate",
                                  "unknown server name"])
def test_mtls_refusals_are_unavailable(mtls_server, certs, case):
    tls = {"plaintext": None,
           "no client certificate": attnserve.TLS(ca=str(certs / "ca.pem")),
           "unknown server name": attnserve.TLS(
               ca=str(certs / "ca.pem"), cert=str(certs / "client.pem"),
               key=str(certs / "client.key"), server_name="elsewhere")}[case]
    with attnserve.Client(mtls_server.address, tls=tls, timeout=10,
                          retries=0) as c:
        with pytest.raises(attnserve.AttnserveError) as e:
            c.info()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


def test_tls_files_that_cannot_be_read(tmp_path):
    with pytest.raises(attnserve.AttnserveError) as e:
        attnserve.Client("x:1", tls=attnserve.TLS(ca=str(tmp_path / "no.pem")))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "tls.ca" in e.value.message and "no.pem" in e.value.message
    with pytest.raises(attnserve.AttnserveError) as e:
        attnserve.Client("x:1", tls=attnserve.TLS(cert=str(tmp_path / "c.pem")))
    assert "cert and key go together" in e.value.message


def test_example_token_file_and_verbose(token_server, tmp_path):
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    env = {k: v for k, v in os.environ.items() if k != "ATTNSERVE_TOKEN"}
    example = os.path.join(os.path.dirname(MODEL_DIR), "..", "..", "client",
                           "python_example.py")
    r = subprocess.run(["/usr/bin/python3", example, "--target",
                        token_server.address, "--text", "the cat sat",
                        "--token_file", str(token_file), "--verbose"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Encode: x-" in r.stderr
    r = subprocess.run(["/usr/bin/python3", example, "--target",
                        token_server.address], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 1
    assert "python_example: UNAUTHENTICATED: " in r.stderr
