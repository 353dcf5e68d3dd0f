"""attnserve.Client against one attnserve process serving two models
(README "Several models"): tiny_bert as "bert" (with a vocab) and
tiny_roberta as "roberta" (token ids only), with no default model, so every
call must name its model: per call with ``model=``, or for the whole client
with ``Client(model=...)``."""

import json
import os

import grpc
import numpy as np
import pytest

import attnserve
from conftest import REPO, ServerProcess, server_binary

BERT_DIR = os.path.join(REPO, "tests", "data", "tiny_bert")
ROBERTA_DIR = os.path.join(REPO, "tests", "data", "tiny_roberta")


def golden(model_dir: str, name: str) -> dict:
    with open(os.path.join(model_dir, "golden.json"), encoding="utf-8") as f:
        return {s["name"]: s for s in json.load(f)["sequences"]}[name]


@pytest.fixture(scope="module")
def two_models():
    s = ServerProcess(server_binary(), [f"--model=bert={BERT_DIR}",
                                        f"--model=roberta={ROBERTA_DIR}",
                                        "--model_precision=roberta=bf16"])
    yield s
    assert s.stop() == 0, "attnserve did not exit 0 on SIGTERM:\n" + "".join(s.log)


@pytest.fixture
def client2(two_models):
    with attnserve.Client(two_models.address, timeout=60) as c:
        yield c


def test_list_models_has_both(client2):
    models = client2.list_models()
    assert [m.name for m in models] == ["bert", "roberta"]
    assert [m.precision for m in models] == ["fp32", "bf16"]
    assert models[0].has_tokenizer and not models[1].has_tokenizer
    assert client2.info(model="roberta") == models[1]


def test_each_call_runs_on_the_model_it_names(client2):
    g = golden(BERT_DIR, "len12")
    out = client2.encode(g["token_ids"], hidden=True, model="bert")
    assert out.model == "bert"
    want = np.asarray(g["last_hidden_state"]["data"]).reshape(
        g["last_hidden_state"]["shape"])
    np.testing.assert_allclose(out[0].hidden_states, want, atol=1e-4)

    r = golden(ROBERTA_DIR, "len12")
    out = client2.encode(r["token_ids"], hidden=True, model="roberta")
    assert out.model == "roberta"
    assert out[0].hidden_states.shape == (12, 36)

    assert client2.tokenize("the cat", model="bert")[0].tokens == [
        "[CLS]", "the", "cat", "[SEP]"]
    ranking = client2.rank_heads(r["token_ids"][:5], model="roberta")
    assert ranking.model == "roberta" and len(ranking.heads) == 2 * 3
    hidden = client2.infer([r["token_ids"][:5]], outputs=["last_hidden_state"],
                           model="roberta")["last_hidden_state"]
    assert hidden.shape == (1, 5, 36)


def test_a_client_default_model_and_the_refusals(two_models):
    with attnserve.Client(two_models.address, timeout=60, model="roberta") as c:
        assert c.info().name == "roberta"
        assert c.encode([0, 7, 8, 2]).model == "roberta"
        # Text on a model without a vocab.
        with pytest.raises(attnserve.AttnserveError) as e:
            c.encode("the cat")
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
        # A mask of a whole layer asks the named model for its head count.
        assert c.encode([0, 7, 8, 2], head_mask="1:*").model == "roberta"
    with attnserve.Client(two_models.address, timeout=60) as c:
        # Two models, no --default_model: the name is required.
        with pytest.raises(attnserve.AttnserveError) as e:
            c.encode([2, 10, 3])
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert '"bert", "roberta"' in e.value.message
        with pytest.raises(attnserve.AttnserveError) as e:
            c.info(model="bert-large")
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        assert 'served: "bert", "roberta"' in e.value.message


def test_encode_stream_routes_each_message(client2):
    from attnserve.proto import attnserve_pb2 as pb
    requests = [pb.EncodeRequest(model=m, sequences=[pb.Sequence(token_ids=ids)])
                for m, ids in (("bert", [2, 10, 3]), ("roberta", [0, 7, 2]),
                               ("nope", [2, 3]), ("bert", [2, 11, 3]))]
    results = list(client2.encode_stream(requests))
    assert [r.model for r in results if r.error is None] == [
        "bert", "roberta", "bert"]
    assert results[2].error.code == grpc.StatusCode.NOT_FOUND
