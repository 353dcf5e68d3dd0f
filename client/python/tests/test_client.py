"""attnserve.Client against a real attnserve process on tiny_bert (2 layers,
4 heads, hidden 32, max 40 positions, [CLS] = 2, [SEP] = 3), checked
against the model's goldens (tools/gen_golden.py: hidden states to 1e-4,
attention to 1e-5, as the C++ server tests promise)."""

import os

import grpc
import numpy as np
import pytest

import attnserve
from attnserve.proto import attnserve_pb2 as pb
from conftest import skip_if_unimplemented

HIDDEN_TOL = 1e-4
ATTENTION_TOL = 1e-5


def tensor(g: dict) -> np.ndarray:
    return np.asarray(g["data"], dtype=np.float64).reshape(g["shape"])


def test_imports_the_installed_package():
    if not os.environ.get("ATTNSERVE_EXPECT_INSTALLED"):
        pytest.skip("run by run_tests.sh only: it installs the package")
    assert "site-packages" in attnserve.__file__, attnserve.__file__


def test_info(client):
    info = client.info()
    assert (info.num_layers, info.num_heads, info.hidden_size) == (2, 4, 32)
    assert info.vocab_size == 99 and info.max_position_embeddings == 40
    assert info.has_tokenizer and info.precision == "fp32"
    assert info.default_pooling in ("cls", "mean")
    assert info.heads_per_layer == [4, 4] and info.pruned_heads == []
    assert info.raw.name == info.name


def test_list_models(client):
    models = skip_if_unimplemented("ListModels", client.list_models)
    assert models[0] == client.info()  # the default model first


def test_tokenize_text_and_pair(client):
    [single, pair] = client.tokenize(["the cat sat", "hello"], pair=["", "the dog"])
    assert single.tokens == ["[CLS]", "the", "cat", "sat", "[SEP]"]
    assert single.token_ids[0] == 2 and single.token_ids[-1] == 3
    assert single.offsets == [(0, 0), (0, 3), (4, 7), (8, 11), (0, 0)]
    assert pair.tokens == ["[CLS]", "hello", "[SEP]", "the", "dog", "[SEP]"]
    assert pair.token_type_ids == [0, 0, 0, 1, 1, 1]
    # One text is still a list of one.
    assert len(client.tokenize("hello world")) == 1


def test_encode_ids_match_the_goldens(client, golden):
    names = ["len1", "len5", "len12", "len40"]
    ids = [golden[n]["token_ids"] for n in names]
    out = client.encode(ids, hidden=True, attention=True, pooling="cls")
    assert len(out) == len(names)
    for name, seq in zip(names, out):
        g = golden[name]
        t = g["length"]
        assert seq.token_ids == g["token_ids"]
        assert seq.hidden_states.shape == (t, 32)
        assert seq.hidden_states.dtype == np.float32
        np.testing.assert_allclose(seq.hidden_states,
                                   tensor(g["last_hidden_state"]),
                                   atol=HIDDEN_TOL, rtol=0)
        assert seq.attention.shape == (2, 4, t, t)
        np.testing.assert_allclose(seq.attention, tensor(g["attentions"]),
                                   atol=ATTENTION_TOL, rtol=0)
        assert seq.embedding.shape == (32,)
        np.testing.assert_allclose(seq.embedding,
                                   tensor(g["last_hidden_state"])[0],
                                   atol=HIDDEN_TOL, rtol=0)
        assert seq.hidden_states.flags.writeable
    assert out.embeddings.shape == (4, 32)


def test_encode_token_type_ids_and_numpy_input(client, golden):
    g = golden["pair9"]
    by_list = client.encode(g["token_ids"], token_type_ids=g["token_type_ids"],
                            hidden=True)
    np.testing.assert_allclose(by_list[0].hidden_states,
                               tensor(g["last_hidden_state"]), atol=HIDDEN_TOL,
                               rtol=0)
    by_array = client.encode(np.array([g["token_ids"]], dtype=np.int64),
                             token_type_ids=np.array([g["token_type_ids"]]),
                             hidden=True)
    np.testing.assert_array_equal(by_array[0].hidden_states,
                                  by_list[0].hidden_states)


def test_encode_text_selects_layers_heads_and_fp16(client):
    out = client.encode("the cat sat on the mat", layers=[1], heads=[3, 0],
                        fp16=True)
    seq = out[0]
    assert seq.tokens == ["[CLS]", "the", "cat", "sat", "on", "the", "mat",
                          "[SEP]"]
    assert seq.attention.shape == (1, 2, 8, 8)
    assert seq.attention.dtype == np.float16
    np.testing.assert_allclose(seq.attention.astype(np.float32).sum(-1), 1,
                               atol=5e-3)
    full = client.encode("the cat sat on the mat", attention=True)[0].attention
    np.testing.assert_allclose(seq.attention[0, 0], full[1, 3], atol=1e-3)
    np.testing.assert_allclose(seq.attention[0, 1], full[1, 0], atol=1e-3)
    assert seq.hidden_states is None


def test_encode_query_positions(client):
    seq = client.encode("the cat sat", layers=[0], query_positions=[2, 0])[0]
    assert seq.attention.shape == (1, 4, 2, 5)
    full = client.encode("the cat sat", attention=True, layers=[0])[0].attention
    np.testing.assert_array_equal(seq.attention[0, :, 0], full[0, :, 2])


def test_encode_stats_and_rollout_without_maps(client):
    seq = client.encode("the cat sat on the mat", stats=True, rollout=True,
                        layers=[0, 1])[0]
    assert seq.attention is None  # maps only with attention=True
    assert [(s.layer, s.head) for s in seq.head_stats] == [
        (l, h) for l in (0, 1) for h in range(4)]
    assert all(0 <= s.max_weight <= 1 and s.entropy >= 0 for s in seq.head_stats)
    assert [s.layer for s in seq.layer_stats] == [0, 1]
    js = seq.layer_stats[0].js_divergence
    assert js.shape == (4, 4)
    np.testing.assert_allclose(js, js.T, atol=1e-6)
    assert seq.rollout.shape == (8, 8)
    with_maps = client.encode("the cat", stats=True, attention=True)[0]
    assert with_maps.attention.shape == (2, 4, 4, 4)


def test_encode_pooling_and_normalize(client):
    mean = client.encode(["a cat", "a dog"], pooling="mean", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(mean.embeddings, axis=1), 1,
                               atol=1e-5)
    seq = client.encode("a cat", pooling="mean", hidden=True)[0]
    np.testing.assert_allclose(seq.embedding, seq.hidden_states.mean(0),
                               atol=1e-5)
    none = client.encode("a cat", pooling="none")
    assert none[0].embedding is None
    with pytest.raises(attnserve.AttnserveError):
        none.embeddings


def test_head_mask_whole_layer_and_single_head(client):
    text = "the cat sat on the mat"
    plain = client.encode(text, hidden=True)[0].hidden_states
    one = client.encode(text, hidden=True, head_mask=[(1, 2)])[0].hidden_states
    assert not np.allclose(plain, one)
    layer = client.encode(text, hidden=True, head_mask="1:*")[0].hidden_states
    heads = client.encode(text, hidden=True,
                          head_mask=[(1, h) for h in range(4)])[0].hidden_states
    np.testing.assert_array_equal(layer, heads)
    request = client.encode_request(text, head_mask="0:1, 1:*")
    assert [(r.layer, r.head) for r in request.head_mask] == [
        (0, 1), (1, 0), (1, 1), (1, 2), (1, 3)]


def test_rank_heads(client):
    r = client.rank_heads("the cat sat on the mat")
    assert len(r.heads) == 8 and len(r.layers) == 2
    importances = [h.importance for h in r.heads]
    assert importances == sorted(importances, reverse=True)
    assert all(x.head == -1 for x in r.layers)
    assert r.ablation_tokens == 8 * (1 + 2 * 4 + 2)
    assert r.forward_passes >= 1


def test_server_errors_carry_the_grpc_code(client):
    with pytest.raises(attnserve.AttnserveError) as e:
        client.encode([2, 500, 3])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "500" in e.value.message and e.value.method == "Encode"
    assert str(e.value).startswith("INVALID_ARGUMENT: ")
    with pytest.raises(attnserve.AttnserveError) as e:
        client.info(model="no-such-model")
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(attnserve.AttnserveError) as e:
        client.encode(" ".join(["cat"] * 50))  # over 40 positions
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(client.encode(" ".join(["cat"] * 50), truncate=True)[0].tokens) == 40


def test_client_side_refusals_are_the_same_exception(client):
    for call in (lambda: client.encode([]),
                 lambda: client.encode(["a", "b"], pair="c"),
                 lambda: client.encode([[2, 3], "x"]),
                 lambda: client.encode("a", pooling="max"),
                 lambda: client.encode("a", head_mask="1"),
                 lambda: attnserve.Client("x:1", lb="random")):
        with pytest.raises(attnserve.AttnserveError) as e:
            call()
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_unreachable_server_is_unavailable():
    with attnserve.Client("127.0.0.1:1", timeout=5, retries=0) as c:
        with pytest.raises(attnserve.AttnserveError) as e:
            c.info()
    assert e.value.code in (grpc.StatusCode.UNAVAILABLE,
                            grpc.StatusCode.DEADLINE_EXCEEDED)


def test_deadline(client):
    with pytest.raises(attnserve.AttnserveError) as e:
        client.rank_heads(["the cat sat on the mat"] * 4, timeout=1e-4)
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_token_goes_out_as_bearer_metadata(server):
    seen = []

    class Record(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            seen.append(dict(details.metadata or []))
            return continuation(details, request)

    with attnserve.Client(server.address, token="s3cret") as c:
        c._stub = attnserve.proto.attnserve_pb2_grpc.EncoderStub(
            grpc.intercept_channel(c._channel, Record()))
        assert c.info().num_layers == 2
    assert seen == [{"authorization": "Bearer s3cret"}]


def test_encode_stream_in_order_with_errors(client):
    texts = ["the cat sat", "a dog ran", "hello world", "the sun"] * 5
    items = list(texts)
    items[7] = [2, 500, 3]  # bad id: an error response, the stream goes on
    results = skip_if_unimplemented(
        "EncodeStream", lambda: list(client.encode_stream(iter(items))))
    assert len(results) == len(items)
    for i, r in enumerate(results):
        if i == 7:
            assert r.error is not None and not r.sequences
            assert r.error.code == grpc.StatusCode.INVALID_ARGUMENT
            continue
        assert r.error is None
        np.testing.assert_array_equal(r[0].embedding, client.encode(
            texts[i])[0].embedding)
        assert r[0].tokens == client.tokenize(texts[i])[0].tokens


def test_encode_stream_options_and_raw_requests(client):
    raw = pb.EncodeRequest(sequences=[pb.Sequence(text="the cat")],
                           return_hidden_states=True)
    results = skip_if_unimplemented("EncodeStream", lambda: list(
        client.encode_stream([["a cat", "a dog"], raw], layers=[0])))
    assert [len(r) for r in results] == [2, 1]
    assert results[0][0].attention.shape[:2] == (1, 4)
    assert results[1][0].attention is None
    assert results[1][0].hidden_states.shape == (4, 32)


def test_encode_stream_refused_item_raises_client_error(client):
    def items():
        yield "the cat"
        yield []  # no input: refused by the client
    with pytest.raises(attnserve.AttnserveError) as e:
        skip_if_unimplemented("EncodeStream",
                              lambda: list(client.encode_stream(items())))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "no input" in e.value.message


def test_infer_ids_equals_encode(client, golden):
    ids = [golden["len5"]["token_ids"], golden["len12"]["token_ids"]]
    out = client.infer(ids, outputs=["last_hidden_state", "embedding",
                                     "attentions"], layers=[1], pooling="cls")
    assert out["last_hidden_state"].shape == (2, 12, 32)
    assert out["attentions"].shape == (2, 1, 4, 12, 12)
    native = client.encode(ids, hidden=True, layers=[1], pooling="cls")
    for b, seq in enumerate(native):
        t = len(seq.token_ids)
        np.testing.assert_array_equal(out["last_hidden_state"][b, :t],
                                      seq.hidden_states)
        assert not out["last_hidden_state"][b, t:].any()  # zero on padding
        np.testing.assert_array_equal(out["attentions"][b, :, :, :t, :t],
                                      seq.attention)
        np.testing.assert_array_equal(out["embedding"][b], seq.embedding)


def test_infer_text_default_outputs_and_fp16(client):
    out = client.infer(["the cat sat", "hello"], pair=["", "the dog"])
    assert "attentions" not in out  # only when named
    assert out["token_ids"].dtype == np.int64
    assert out["token_ids"].shape == (2, 6)
    assert out["token_ids"][0].tolist() == client.tokenize("the cat sat")[0] \
        .token_ids + [0]
    assert out["embedding"].shape == (2, 32)
    half = client.infer("the cat", outputs=["attentions"], fp16=True)
    assert half["attentions"].dtype == np.float16
    assert half["attentions"].shape == (1, 2, 4, 4, 4)


def test_infer_errors(client):
    with pytest.raises(attnserve.AttnserveError) as e:
        client.infer("the cat", outputs=["logits"])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "logits" in e.value.message


def test_pruned_heads_in_info_and_zero_maps():
    from conftest import MODEL_DIR, ServerProcess, server_binary, server_help
    if "--prune_heads" not in server_help():
        pytest.skip("this attnserve has no --prune_heads")
    s = ServerProcess(server_binary(), [f"--model={MODEL_DIR}",
                                        "--prune_heads=1:2"])
    try:
        with attnserve.Client(s.address) as c:
            info = c.info()
            assert info.heads_per_layer == [4, 3]
            assert info.pruned_heads == [(1, 2)]
            maps = c.encode("the cat sat", attention=True)[0].attention
            assert maps.shape == (2, 4, 5, 5)
            assert not maps[1, 2].any() and maps[1, 1].any()
            with pytest.raises(attnserve.AttnserveError) as e:
                c.encode("the cat", heads=[2], layers=[1])
            assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        s.stop()
