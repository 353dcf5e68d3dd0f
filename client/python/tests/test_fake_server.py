"""The client's side of ListModels and EncodeStream against a small fake
server written here with grpcio (no model): order, per-message errors,
refused items, early exit. The same calls run against the real server in
test_client.py once it serves them."""

from concurrent import futures
from typing import Iterator

import grpc
import numpy as np
import pytest

import attnserve
from attnserve.proto import attnserve_pb2 as pb
from attnserve.proto import attnserve_pb2_grpc as pb_grpc


class FakeEncoder(pb_grpc.EncoderServicer):
    """ListModels: two models. EncodeStream: per message, an embedding
    [len(ids), sum(ids)] per sequence, or an error for id 500."""

    def __init__(self) -> None:
        self.received = 0

    def ListModels(self, request, context):
        return pb.ListModelsResponse(models=[
            pb.ModelInfo(name="a", num_layers=2, default_pooling=pb.POOLING_CLS),
            pb.ModelInfo(name="b", num_layers=12, has_tokenizer=True)])

    def EncodeStream(self, requests, context) -> Iterator[pb.EncodeResponse]:
        for request in requests:
            self.received += 1
            if any(500 in s.token_ids for s in request.sequences):
                yield pb.EncodeResponse(error=pb.Error(
                    code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                    message="sequences[0].token_ids[1] = 500 is not below 99"))
                continue
            response = pb.EncodeResponse(model=request.model or "a")
            for s in request.sequences:
                e = np.array([len(s.token_ids), sum(s.token_ids)], "<f4")
                response.results.add(
                    token_ids=s.token_ids,
                    embedding=pb.Tensor(dtype=pb.FLOAT32, shape=[2],
                                        data=e.tobytes()))
            yield response


@pytest.fixture
def fake():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = FakeEncoder()
    pb_grpc.add_EncoderServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # pick_first: the fake has no health service for round_robin to ask.
    with attnserve.Client(f"127.0.0.1:{port}", lb="pick_first") as client:
        yield client, servicer
    server.stop(None)


def test_list_models(fake):
    client, _ = fake
    models = client.list_models()
    assert [m.name for m in models] == ["a", "b"]
    assert models[0].default_pooling == "cls" and models[1].has_tokenizer


def test_stream_keeps_order_and_goes_on_after_an_error(fake):
    client, _ = fake
    items = [[[2, i, 3]] for i in range(1, 200)]
    items[50] = [[2, 500, 3]]
    results = list(client.encode_stream(iter(items), model="b"))
    assert len(results) == len(items)
    for i, r in enumerate(results):
        if i == 50:
            assert r.error.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "500" in r.error.message and r.sequences == []
            continue
        assert r.error is None and r.model == "b"
        assert r[0].token_ids == [2, i + 1, 3]
        np.testing.assert_array_equal(r[0].embedding, [3, i + 6])


def test_stream_of_several_sequences_per_message(fake):
    client, _ = fake
    results = list(client.encode_stream([[[2, 3], [2, 4, 3]], [2, 9, 3]]))
    assert [len(r) for r in results] == [2, 1]


def test_a_refused_item_raises_after_the_ones_before(fake):
    client, _ = fake
    got = []
    with pytest.raises(attnserve.AttnserveError) as e:
        for r in client.encode_stream([[2, 3], "x", []]):
            got.append(r)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "no input" in e.value.message
    assert len(got) == 2


def test_leaving_early_cancels_the_stream(fake):
    client, servicer = fake

    def endless():
        i = 0
        while True:
            i += 1
            yield [2, i % 90, 3]

    stream = client.encode_stream(endless())
    for n, _ in enumerate(stream):
        if n == 5:
            break
    stream.close()
    received = servicer.received
    assert received < 10_000  # the generator was not drained


def test_unimplemented_stream_raises_with_its_code():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_EncoderServicer_to_server(pb_grpc.EncoderServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with attnserve.Client(f"127.0.0.1:{port}", lb="pick_first") as client:
            with pytest.raises(attnserve.AttnserveError) as e:
                list(client.encode_stream(["a"]))
            assert e.value.code == grpc.StatusCode.UNIMPLEMENTED
            assert e.value.method == "EncodeStream"
    finally:
        server.stop(None)
