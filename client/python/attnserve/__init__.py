"""attnserve: a Python client for the attnserve gRPC server.

    import attnserve

    with attnserve.Client("localhost:50051") as client:
        info = client.info()
        out = client.encode("the cat sat", attention=True, layers=[1])
        out[0].attention   # numpy (1, heads, T, T), [layer, head, query, key]
        out[0].tokens      # ['[CLS]', 'the', 'cat', 'sat', '[SEP]']

Every failure raises AttnserveError, which carries the gRPC status code. The
generated stubs are in attnserve.proto (attnserve_pb2, attnserve_pb2_grpc,
and inference_pb2/_grpc for the Open Inference Protocol).
"""

from attnserve.client import TLS, Client, make_sequences, service_config
from attnserve.errors import AttnserveError
from attnserve.results import (EncodeResult, HeadImportance, HeadStats,
                               LayerStats, ModelInfo, RankHeadsResult,
                               SequenceOutput, Tokenized, tensor_to_numpy)

__version__ = "0.1.0"

__all__ = [
    "AttnserveError", "Client", "EncodeResult", "HeadImportance", "HeadStats",
    "LayerStats", "ModelInfo", "RankHeadsResult", "SequenceOutput", "TLS",
    "Tokenized", "make_sequences", "service_config", "tensor_to_numpy",
]
