"""What the Client returns: plain dataclasses, tensors as numpy arrays.

Every tensor of the wire format (``attnserve.v1.Tensor``: row-major,
little-endian, FLOAT32 or FLOAT16) becomes a writable numpy array of its
shape and dtype (float32 or float16). Token lists are Python lists. Each
result keeps the protobuf message it was made from in ``raw`` (not shown in
``repr``), for fields this package does not map.
"""

from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Tuple

import grpc
import numpy as np

from attnserve.errors import AttnserveError, bad_response
from attnserve.proto import attnserve_pb2 as pb

_DTYPES = {pb.FLOAT32: np.dtype("<f4"), pb.FLOAT16: np.dtype("<f2")}

# "cls" <-> POOLING_CLS, for the pooling arguments and ModelInfo.
POOLING_NAMES = {
    pb.POOLING_UNSPECIFIED: None,
    pb.POOLING_NONE: "none",
    pb.POOLING_CLS: "cls",
    pb.POOLING_MEAN: "mean",
    pb.POOLING_POOLER: "pooler",
}


def tensor_to_numpy(tensor: pb.Tensor, what: str = "tensor",
                    method: str = "Encode") -> np.ndarray:
    """A wire tensor as a numpy array of its shape (float32 or float16).

    Raises AttnserveError (DATA_LOSS) when the bytes do not fill the shape.
    """
    dtype = _DTYPES.get(tensor.dtype)
    if dtype is None:
        raise bad_response(f"{what} has dtype {tensor.dtype}", method)
    shape = tuple(int(d) for d in tensor.shape)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dtype.itemsize != len(tensor.data):
        raise bad_response(f"{what}: {len(tensor.data)} bytes for shape "
                           f"{list(shape)} of {dtype.name}", method)
    # astype(native) copies: the array is writable and owns its memory.
    return np.frombuffer(tensor.data, dtype=dtype).reshape(shape).astype(
        dtype.newbyteorder("="))


def _optional_tensor(message: Any, name: str, method: str = "Encode"
                     ) -> Optional[np.ndarray]:
    if not message.HasField(name):
        return None
    return tensor_to_numpy(getattr(message, name), name, method)


@dataclass
class ModelInfo:
    """A served model (``attnserve.v1.ModelInfo``)."""

    name: str
    num_layers: int
    num_heads: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    weight_dtype: str      # as stored in the checkpoint: F32, F16 or BF16
    precision: str         # compute precision: fp32, bf16 or int8
    has_pooler: bool
    has_tokenizer: bool    # text input and tokenize() work
    default_pooling: Optional[str]  # "cls" or "mean": what pooling=None means
    # Heads each layer still has after attnserve --prune_heads, and the
    # pruned (layer, head) pairs; head indices keep the checkpoint's numbering.
    heads_per_layer: List[int] = field(default_factory=list)
    pruned_heads: List[Tuple[int, int]] = field(default_factory=list)
    raw: pb.ModelInfo = field(default=None, repr=False, compare=False)

    @classmethod
    def from_proto(cls, m: pb.ModelInfo) -> "ModelInfo":
        return cls(name=m.name, num_layers=m.num_layers, num_heads=m.num_heads,
                   hidden_size=m.hidden_size,
                   intermediate_size=m.intermediate_size,
                   vocab_size=m.vocab_size,
                   max_position_embeddings=m.max_position_embeddings,
                   type_vocab_size=m.type_vocab_size,
                   weight_dtype=m.weight_dtype, precision=m.precision,
                   has_pooler=m.has_pooler, has_tokenizer=m.has_tokenizer,
                   default_pooling=POOLING_NAMES.get(m.default_pooling),
                   heads_per_layer=list(m.heads_per_layer),
                   pruned_heads=[(h.layer, h.head) for h in m.pruned_heads],
                   raw=m)


@dataclass
class Tokenized:
    """One tokenized sequence (``attnserve.v1.TokenizedSequence``)."""

    token_ids: List[int]
    tokens: List[str]
    token_type_ids: List[int]
    # (start, end) byte offsets into the UTF-8 text (or the pair, for the
    # second segment's tokens); (0, 0) for [CLS] and [SEP]; empty for ids.
    offsets: List[Tuple[int, int]]
    raw: pb.TokenizedSequence = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, t: pb.TokenizedSequence) -> "Tokenized":
        o = list(t.offsets)
        return cls(token_ids=list(t.token_ids), tokens=list(t.tokens),
                   token_type_ids=list(t.token_type_ids),
                   offsets=list(zip(o[0::2], o[1::2])), raw=t)


@dataclass
class HeadStats:
    """Statistics of one head's attention map (``attnserve.v1.HeadStats``)."""

    layer: int
    head: int
    entropy: float        # mean over query rows of -sum p ln p (nats)
    max_weight: float     # mean over rows of max_j p_ij
    mean_distance: float  # mean over rows of sum_j p_ij |i - j| (tokens)
    cls_weight: float
    sep_weight: float
    self_weight: float
    prev_weight: float
    next_weight: float

    @classmethod
    def from_proto(cls, s: pb.HeadStats) -> "HeadStats":
        return cls(layer=s.layer, head=s.head, entropy=s.entropy,
                   max_weight=s.max_weight, mean_distance=s.mean_distance,
                   cls_weight=s.cls_weight, sep_weight=s.sep_weight,
                   self_weight=s.self_weight, prev_weight=s.prev_weight,
                   next_weight=s.next_weight)


@dataclass
class LayerStats:
    """How different a layer's selected heads are (``attnserve.v1.LayerStats``)."""

    layer: int
    js_divergence: np.ndarray  # (heads, heads) float32, symmetric, in [0, ln 2]
    diversity: float           # mean over head pairs of js_divergence

    @classmethod
    def from_proto(cls, s: pb.LayerStats) -> "LayerStats":
        return cls(layer=s.layer,
                   js_divergence=tensor_to_numpy(s.js_divergence, "js_divergence"),
                   diversity=s.diversity)


@dataclass
class SequenceOutput:
    """What the server returned for one input sequence.

    Tensors that were not asked for are None (embedding: pooling="none").
    """

    token_ids: List[int]  # (T) what the model ran
    tokens: List[str]     # (T) when the model has a vocab, else []
    embedding: Optional[np.ndarray]      # (hidden,) float32
    hidden_states: Optional[np.ndarray]  # (T, hidden) float32
    # (layers, heads, T, T) or (layers, heads, Q, T) with query_positions;
    # float32, or float16 with fp16=True. [layer, head, query, key].
    attention: Optional[np.ndarray]
    head_stats: List[HeadStats]    # layer-major, request order
    layer_stats: List[LayerStats]  # request order
    rollout: Optional[np.ndarray]  # (T, T) float32
    raw: pb.SequenceResult = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, r: pb.SequenceResult) -> "SequenceOutput":
        return cls(token_ids=list(r.token_ids), tokens=list(r.tokens),
                   embedding=_optional_tensor(r, "embedding"),
                   hidden_states=_optional_tensor(r, "hidden_states"),
                   attention=_optional_tensor(r, "attention"),
                   head_stats=[HeadStats.from_proto(s) for s in r.head_stats],
                   layer_stats=[LayerStats.from_proto(s) for s in r.layer_stats],
                   rollout=_optional_tensor(r, "rollout"), raw=r)


@dataclass
class EncodeResult:
    """An Encode answer: one SequenceOutput per input sequence, in order.

    Iterating, ``len()`` and indexing go over ``sequences``. From
    ``encode_stream``, a message the server refused has ``error`` set (an
    AttnserveError with its code and message) and no sequences; the stream
    goes on.
    """

    model: str
    sequences: List[SequenceOutput]
    error: Optional[AttnserveError] = None
    raw: Optional[pb.EncodeResponse] = field(default=None, repr=False,
                                             compare=False)

    @classmethod
    def from_proto(cls, r: pb.EncodeResponse, expected: Optional[int] = None,
                   method: str = "Encode") -> "EncodeResult":
        if r.HasField("error"):
            return cls(model=r.model, sequences=[], raw=r,
                       error=AttnserveError.from_code_number(
                           r.error.code, r.error.message, method))
        if expected is not None and len(r.results) != expected:
            raise bad_response(f"{len(r.results)} results for {expected} "
                               "sequences", method)
        return cls(model=r.model,
                   sequences=[SequenceOutput.from_proto(s) for s in r.results],
                   raw=r)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> SequenceOutput:
        return self.sequences[i]

    def __iter__(self) -> Iterator[SequenceOutput]:
        return iter(self.sequences)

    @property
    def embeddings(self) -> np.ndarray:
        """(sequences, hidden) float32: every sequence's embedding, stacked."""
        if any(s.embedding is None for s in self.sequences):
            raise AttnserveError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no embedding: the request had pooling=\"none\"")
        return np.stack([s.embedding for s in self.sequences])


@dataclass
class HeadImportance:
    """How much masking a head (or a whole layer: head = -1) changes the
    pooled output: mean over sequences of 1 - cos, 0 = no effect, up to 2."""

    layer: int
    head: int
    importance: float


@dataclass
class RankHeadsResult:
    """A RankHeads answer: every head and every layer, most important first."""

    model: str
    heads: List[HeadImportance]
    layers: List[HeadImportance]
    ablation_tokens: int  # the work done: sum of T (1 + layers heads + layers)
    forward_passes: int   # batches it was split into
    raw: pb.RankHeadsResponse = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, r: pb.RankHeadsResponse) -> "RankHeadsResult":
        def items(xs: Any) -> List[HeadImportance]:
            return [HeadImportance(x.layer, x.head, x.importance) for x in xs]
        return cls(model=r.model, heads=items(r.heads), layers=items(r.layers),
                   ablation_tokens=r.ablation_tokens,
                   forward_passes=r.forward_passes, raw=r)
