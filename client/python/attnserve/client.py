"""attnserve.Client: every RPC of attnserve.v1, and ModelInfer of the Open
Inference Protocol, with numpy results and one exception type.

A Client holds one gRPC channel; it is safe to use from several threads at
once (gRPC channels and stubs are), and cheap to keep for the life of a
program. Close it (or use it as a context manager) to release the channel.
"""

import json
import struct
import threading
from collections import deque
from dataclasses import dataclass
from typing import (Any, Deque, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple, Union)

import grpc
import numpy as np

from attnserve.errors import AttnserveError, bad_response, invalid_argument
from attnserve.proto import attnserve_pb2 as pb
from attnserve.proto import attnserve_pb2_grpc as pb_grpc
from attnserve.proto import inference_pb2 as oip
from attnserve.proto import inference_pb2_grpc as oip_grpc
from attnserve.results import (EncodeResult, ModelInfo, RankHeadsResult,
                               Tokenized)

# What encode() and friends take as input: a text, texts, one sequence of
# token ids, or several (lists, or a 1-D/2-D integer numpy array).
Texts = Union[str, Sequence[str]]
Ids = Union[Sequence[int], Sequence[Sequence[int]], np.ndarray]
Inputs = Union[Texts, Ids, Sequence[pb.Sequence]]
# Heads to switch off: "2:5,3:*", or [(2, 5), (3, None)] (None, -1 or "*" =
# every head of the layer).
HeadMask = Union[str, Sequence[Tuple[int, Union[int, str, None]]]]

_POOLING = {None: pb.POOLING_UNSPECIFIED, "none": pb.POOLING_NONE,
            "cls": pb.POOLING_CLS, "mean": pb.POOLING_MEAN,
            "pooler": pb.POOLING_POOLER}

_ENCODER = "attnserve.v1.Encoder"
_OIP = "inference.GRPCInferenceService"


@dataclass(frozen=True)
class TLS:
    """TLS settings of a Client (``Client(..., tls=TLS(ca="ca.pem"))``).

    Each of ca, cert and key is a PEM file name (str) or PEM bytes.

    Attributes:
        ca: roots to verify the server with; None = the system's roots.
        cert: client certificate chain, for servers that require one (mTLS).
        key: the private key of ``cert``.
        server_name: the name the server's certificate must carry, when it
            is not the target's host (e.g. connecting by IP address).
    """

    ca: Union[str, bytes, None] = None
    cert: Union[str, bytes, None] = None
    key: Union[str, bytes, None] = None
    server_name: Optional[str] = None


def service_config(lb: str = "round_robin", max_attempts: int = 5) -> str:
    """The channel's gRPC service config, as client/channel.cc builds it for
    attnctl: load balancing over every address of the target, client-side
    health checking of attnserve.v1.Encoder (a draining replica leaves the
    rotation at once), and retries of UNAVAILABLE (every attnserve call is
    idempotent). Backoff 50 ms doubling to 1 s. One attempt: no retry
    policy (gRPC refuses maxAttempts < 2)."""
    config: Dict[str, Any] = {
        "loadBalancingConfig": [{lb: {}}],
        "healthCheckConfig": {"serviceName": _ENCODER}}
    if max_attempts >= 2:
        config["methodConfig"] = [{
            "name": [{"service": _ENCODER}, {"service": _OIP}],
            "retryPolicy": {
                "maxAttempts": max_attempts, "initialBackoff": "0.05s",
                "maxBackoff": "1s", "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"]}}]
    return json.dumps(config)


def _pem(value: Union[str, bytes, None], what: str) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as e:
        raise invalid_argument(f"tls.{what}: cannot read {value}: "
                               f"{e.strerror}") from None


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _id_rows(ids: Ids, what: str) -> List[List[int]]:
    """One or several sequences of ids → a list of int lists."""
    if isinstance(ids, np.ndarray):
        if ids.ndim not in (1, 2) or not np.issubdtype(ids.dtype, np.integer):
            raise invalid_argument(f"{what}: a numpy array of ids must be 1-D "
                                   f"or 2-D integers, not {ids.ndim}-D "
                                   f"{ids.dtype}")
        return [ids.tolist()] if ids.ndim == 1 else ids.tolist()
    items = list(ids)
    if items and all(_is_int(x) for x in items):
        return [[int(x) for x in items]]
    rows = []
    for i, row in enumerate(items):
        row = list(row) if not isinstance(row, (str, bytes)) else None
        if row is None or not all(_is_int(x) for x in row):
            raise invalid_argument(f"{what}[{i}] is not a sequence of integer "
                                   "ids")
        rows.append([int(x) for x in row])
    return rows


def _is_texts(inputs: Any) -> bool:
    return isinstance(inputs, str) or (
        not isinstance(inputs, np.ndarray) and len(inputs) > 0
        and all(isinstance(t, str) for t in inputs))


def make_sequences(inputs: Inputs, pair: Union[str, Sequence[str], None] = None,
                   token_type_ids: Optional[Ids] = None) -> List[pb.Sequence]:
    """The Sequence messages of an input: texts (with their pairs) or ids.

    inputs: "text", ["a", "b"], [101, 7592, 102], [[...], [...]], a 1-D or
    2-D integer numpy array, or Sequence messages. pair: a second segment
    for one text, or one per text ("" = none). token_type_ids: one list per
    id sequence (default all 0).
    """
    if inputs is None or (not isinstance(inputs, (str, np.ndarray))
                          and len(inputs) == 0):
        raise invalid_argument("no input: give a text, texts or token ids")
    if not isinstance(inputs, (str, np.ndarray)) and all(
            isinstance(s, pb.Sequence) for s in inputs):
        if pair is not None or token_type_ids is not None:
            raise invalid_argument("pair and token_type_ids go with texts and "
                                   "ids, not with Sequence messages")
        return list(inputs)
    if _is_texts(inputs):
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if token_type_ids is not None:
            raise invalid_argument("token_type_ids go with token ids, not with "
                                   "text (the server sets them for pairs)")
        if pair is None:
            pairs = [""] * len(texts)
        elif isinstance(pair, str):
            if len(texts) != 1:
                raise invalid_argument(f"pair is one text for {len(texts)} "
                                       "texts: give a list, one per text")
            pairs = [pair]
        else:
            pairs = list(pair)
            if len(pairs) != len(texts):
                raise invalid_argument(f"{len(pairs)} pairs for {len(texts)} "
                                       "texts: give one per text")
        return [pb.Sequence(text=t, text_pair=p) for t, p in zip(texts, pairs)]
    if pair is not None:
        raise invalid_argument("pair goes with text, not with token ids")
    rows = _id_rows(inputs, "inputs")
    types: List[List[int]] = []
    if token_type_ids is not None:
        types = _id_rows(token_type_ids, "token_type_ids")
        if len(types) != len(rows):
            raise invalid_argument(f"{len(types)} token_type_ids rows for "
                                   f"{len(rows)} sequences: give one per "
                                   "sequence")
    return [pb.Sequence(token_ids=r, token_type_ids=types[i] if types else [])
            for i, r in enumerate(rows)]


def _pooling(pooling: Union[str, int, None]) -> int:
    if _is_int(pooling):
        return int(pooling)  # a pb.Pooling value
    key = pooling.lower() if isinstance(pooling, str) else pooling
    if key not in _POOLING:
        raise invalid_argument(f"pooling={pooling!r}: use None (the model's "
                               "default), \"cls\", \"mean\", \"pooler\" or "
                               "\"none\"")
    return _POOLING[key]


def _parse_head_mask(mask: HeadMask) -> List[Tuple[int, Optional[int]]]:
    """"2:5,3:*" or [(2, 5), (3, None)] → [(2, 5), (3, None)]."""
    out: List[Tuple[int, Optional[int]]] = []
    items: Iterable[Any]
    if isinstance(mask, str):
        items = [p.split(":") for p in mask.replace(" ", ",").split(",") if p]
    else:
        items = mask
    for item in items:
        try:
            layer, head = item
            layer = int(layer)
            head = None if head in (None, "*", -1, "-1") else int(head)
        except (TypeError, ValueError):
            raise invalid_argument(f"head_mask: {item!r} is not (LAYER, HEAD) "
                                   "or \"LAYER:HEAD\" (HEAD * = every head)"
                                   ) from None
        out.append((layer, head))
    return out


class Client:
    """A connection to attnserve (or to several replicas behind one target).

    Args:
        target: any gRPC target: "localhost:50051", "dns:///name:50051"
            (every address of the name), "ipv4:10.0.0.5:50051,10.0.0.6:50051".
        token: bearer token, sent as ``authorization: Bearer <token>`` on
            every call (servers started with --auth_tokens_file need one).
        tls: None (plaintext), True (TLS, the system's roots), or a TLS.
        timeout: deadline of each call, in seconds (a method's ``timeout=``
            overrides it; encode_stream has none by default).
        lb: "round_robin" (each call to the next healthy address) or
            "pick_first".
        retries: retries of a call that finds a replica gone (UNAVAILABLE),
            0 to 4.
        model: the model every call asks for unless it names one; None =
            the server's default.

    Every method raises AttnserveError on failure.
    """

    def __init__(self, target: str = "localhost:50051", *,
                 token: Optional[str] = None,
                 tls: Union[TLS, bool, None] = None, timeout: float = 30.0,
                 lb: str = "round_robin", retries: int = 4,
                 model: Optional[str] = None) -> None:
        if lb not in ("round_robin", "pick_first"):
            raise invalid_argument(f"lb={lb!r}: use \"round_robin\" or "
                                   "\"pick_first\"")
        if not 0 <= retries <= 4:
            raise invalid_argument(f"retries={retries}: use 0 to 4")
        if not timeout > 0:
            raise invalid_argument(f"timeout={timeout}: must be positive")
        self.target = target
        self.timeout = float(timeout)
        self.model = model or ""
        self._metadata: List[Tuple[str, str]] = (
            [("authorization", f"Bearer {token}")] if token else [])
        options: List[Tuple[str, Any]] = [
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(lb, retries + 1))]
        if tls is None or tls is False:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            t = TLS() if tls is True else tls
            if (t.cert is None) != (t.key is None):
                raise invalid_argument("tls: cert and key go together")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(t.ca, "ca"),
                private_key=_pem(t.key, "key"),
                certificate_chain=_pem(t.cert, "cert"))
            if t.server_name:
                options.append(("grpc.ssl_target_name_override", t.server_name))
            self._channel = grpc.secure_channel(target, credentials,
                                                options=options)
        self._stub = pb_grpc.EncoderStub(self._channel)
        self._oip = oip_grpc.GRPCInferenceServiceStub(self._channel)
        self._num_heads: Dict[str, int] = {}
        self._local = threading.local()

    # ---- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- calls ---------------------------------------------------------------

    @property
    def last_metadata(self) -> Dict[str, str]:
        """The server's initial metadata of this thread's last unary call, in
        the order sent: e.g. the x-queue-time, x-inference-time, x-total-time
        (milliseconds) and x-compute-tokens of servers that time their calls.
        Empty before the first call, and after a call that failed before the
        server answered."""
        return dict(getattr(self._local, "metadata", {}))

    def _call(self, stub: Any, method: str, request: Any,
              timeout: Optional[float]) -> Any:
        self._local.metadata = {}
        try:
            response, call = getattr(stub, method).with_call(
                request, timeout=self.timeout if timeout is None else timeout,
                metadata=self._metadata)
        except grpc.RpcError as e:
            self._local.metadata = _metadata_dict(e)
            raise AttnserveError.from_rpc_error(e, method) from None
        self._local.metadata = _metadata_dict(call)
        return response

    def _model(self, model: Optional[str]) -> str:
        return self.model if model is None else model

    def info(self, model: Optional[str] = None, *,
             timeout: Optional[float] = None) -> ModelInfo:
        """The served model (GetModelInfo); ``model`` None = the client's or
        the server's default."""
        m = self._call(self._stub, "GetModelInfo",
                       pb.GetModelInfoRequest(model=self._model(model)),
                       timeout)
        return ModelInfo.from_proto(m)

    def list_models(self, *, timeout: Optional[float] = None
                    ) -> List[ModelInfo]:
        """Every served model, the default first (ListModels)."""
        r = self._call(self._stub, "ListModels", pb.ListModelsRequest(),
                       timeout)
        return [ModelInfo.from_proto(m) for m in r.models]

    def tokenize(self, inputs: Inputs, pair: Union[str, Sequence[str], None]
                 = None, *, truncate: bool = False,
                 model: Optional[str] = None,
                 timeout: Optional[float] = None) -> List[Tokenized]:
        """The server's WordPiece tokenization: one Tokenized per input
        sequence (a single text still gives a list of one)."""
        request = pb.TokenizeRequest(model=self._model(model),
                                     sequences=make_sequences(inputs, pair),
                                     truncate=truncate)
        r = self._call(self._stub, "Tokenize", request, timeout)
        if len(r.results) != len(request.sequences):
            raise bad_response(f"{len(r.results)} results for "
                               f"{len(request.sequences)} sequences", "Tokenize")
        return [Tokenized.from_proto(t) for t in r.results]

    def encode_request(self, inputs: Inputs,
                       pair: Union[str, Sequence[str], None] = None, *,
                       token_type_ids: Optional[Ids] = None,
                       attention: bool = False,
                       layers: Optional[Sequence[int]] = None,
                       heads: Optional[Sequence[int]] = None,
                       query_positions: Optional[Sequence[int]] = None,
                       fp16: bool = False, stats: bool = False,
                       rollout: bool = False,
                       pooling: Union[str, int, None] = None,
                       normalize: bool = False, hidden: bool = False,
                       head_mask: Optional[HeadMask] = None,
                       truncate: bool = False,
                       model: Optional[str] = None) -> pb.EncodeRequest:
        """The EncodeRequest that encode() sends (arguments as there)."""
        request = pb.EncodeRequest(
            model=self._model(model),
            sequences=make_sequences(inputs, pair, token_type_ids),
            return_hidden_states=hidden, pooling=_pooling(pooling),
            normalize=normalize, truncate=truncate)
        selects = bool(layers or heads or query_positions or fp16)
        maps = attention or (selects and not (stats or rollout))
        if maps or stats or rollout or selects:
            request.attention.CopyFrom(pb.AttentionRequest(
                layers=list(layers or []), heads=list(heads or []),
                query_positions=list(query_positions or []),
                dtype=pb.FLOAT16 if fp16 else pb.FLOAT32, stats=stats,
                rollout=rollout, omit_maps=not maps))
        for layer, head in self._expand_head_mask(head_mask, request.model):
            request.head_mask.add(layer=layer, head=head)
        return request

    def encode(self, inputs: Inputs,
               pair: Union[str, Sequence[str], None] = None, *,
               token_type_ids: Optional[Ids] = None, attention: bool = False,
               layers: Optional[Sequence[int]] = None,
               heads: Optional[Sequence[int]] = None,
               query_positions: Optional[Sequence[int]] = None,
               fp16: bool = False, stats: bool = False, rollout: bool = False,
               pooling: Union[str, int, None] = None, normalize: bool = False,
               hidden: bool = False, head_mask: Optional[HeadMask] = None,
               truncate: bool = False, model: Optional[str] = None,
               timeout: Optional[float] = None) -> EncodeResult:
        """Encodes texts or token ids (Encode).

        Args:
            inputs: a text, texts, one sequence of ids ([CLS] ... [SEP]
                included), several, or a 1-D/2-D integer numpy array.
            pair: second segment: a text for one text, or one per text.
            token_type_ids: with ids, one row per sequence (default all 0).
            attention: return the attention maps (softmax probabilities, as
                computed before head_mask) as SequenceOutput.attention,
                (layers, heads, T, T).
            layers, heads: which layers and heads, in this order (None =
                all). Given alone, they imply attention=True; with stats or
                rollout, maps come only with attention=True.
            query_positions: only these query rows: (layers, heads, Q, T).
            fp16: maps as float16 (half the bytes).
            stats: per-head statistics (head_stats) and each layer's head
                divergence (layer_stats) of the selected layers and heads.
            rollout: attention rollout over all layers, (T, T).
            pooling: None (the model's default), "cls", "mean", "pooler" or
                "none" (no embedding).
            normalize: L2-normalize the embedding.
            hidden: return the last hidden states, (T, hidden).
            head_mask: heads switched off, as Hugging Face's head_mask:
                "2:5,3:*" or [(2, 5), (3, None)].
            truncate: cut text longer than the model's max positions
                (longest first) instead of refusing it.
            model: the model to ask for (None = the client's default).
            timeout: this call's deadline in seconds (None = the client's).
        """
        request = self.encode_request(
            inputs, pair, token_type_ids=token_type_ids, attention=attention,
            layers=layers, heads=heads, query_positions=query_positions,
            fp16=fp16, stats=stats, rollout=rollout, pooling=pooling,
            normalize=normalize, hidden=hidden, head_mask=head_mask,
            truncate=truncate, model=model)
        r = self._call(self._stub, "Encode", request, timeout)
        return EncodeResult.from_proto(r, len(request.sequences))

    def rank_heads(self, inputs: Inputs,
                   pair: Union[str, Sequence[str], None] = None, *,
                   pooling: Union[str, int, None] = None,
                   truncate: bool = False, model: Optional[str] = None,
                   timeout: Optional[float] = None) -> RankHeadsResult:
        """Ranks every head and every layer by how much masking it changes
        the pooled output (RankHeads; pooling None = mean)."""
        request = pb.RankHeadsRequest(model=self._model(model),
                                      sequences=make_sequences(inputs, pair),
                                      pooling=_pooling(pooling),
                                      truncate=truncate)
        return RankHeadsResult.from_proto(
            self._call(self._stub, "RankHeads", request, timeout))

    def encode_stream(self, requests: Iterable[Union[Inputs, pb.EncodeRequest]],
                      *, timeout: Optional[float] = None,
                      **options: Any) -> Iterator[EncodeResult]:
        """Pipelined Encode over one stream (EncodeStream): one EncodeResult
        per item of ``requests``, in order, as they come back.

        Each item is what encode() takes as ``inputs`` (a text, texts, ids),
        encoded with ``options`` (encode()'s keyword arguments), or a
        ready EncodeRequest (sent as it is). Items are read lazily, as gRPC
        sends them, so ``requests`` may be a generator. A message the server
        refuses comes back as an EncodeResult with ``error`` set, and the
        stream goes on; a failure of the whole stream (the server has no
        EncodeStream: UNIMPLEMENTED; deadline; connection) raises
        AttnserveError. ``timeout`` bounds the whole stream (default none).
        Leaving the loop early cancels the stream.
        """
        counts: Deque[int] = deque()
        refused: List[AttnserveError] = []

        def messages() -> Iterator[pb.EncodeRequest]:
            for item in requests:
                try:
                    m = (item if isinstance(item, pb.EncodeRequest)
                         else self.encode_request(item, **options))
                except AttnserveError as e:
                    refused.append(e)  # raised by the consumer below
                    return
                counts.append(len(m.sequences))
                yield m

        call = self._stub.EncodeStream(messages(), timeout=timeout,
                                       metadata=self._metadata)
        try:
            for response in call:
                expected = counts.popleft() if counts else None
                yield EncodeResult.from_proto(response, expected,
                                              "EncodeStream")
            if refused:
                raise refused[0]
        except grpc.RpcError as e:
            if refused:
                raise refused[0] from None
            raise AttnserveError.from_rpc_error(e, "EncodeStream") from None
        finally:
            call.cancel()

    # ---- Open Inference Protocol --------------------------------------------

    def infer(self, inputs: Inputs,
              pair: Union[str, Sequence[str], None] = None, *,
              outputs: Optional[Sequence[str]] = None,
              attention_mask: Optional[Ids] = None,
              token_type_ids: Optional[Ids] = None,
              pooling: Optional[str] = None, normalize: bool = False,
              layers: Optional[Sequence[int]] = None,
              heads: Optional[Sequence[int]] = None, fp16: bool = False,
              head_mask: Optional[HeadMask] = None, truncate: bool = False,
              model: Optional[str] = None,
              timeout: Optional[float] = None) -> Dict[str, np.ndarray]:
        """ModelInfer of the Open Inference Protocol (KServe v2), as a
        Triton or KServe client would call it: outputs by name as numpy
        arrays of their shapes.

        inputs: texts (sent as the BYTES input "text", with "text_pair" for
        ``pair``) or token ids (INT64 "input_ids" [B, T]; ragged rows are
        right-padded with 0 and sent with an "attention_mask"). outputs:
        names among last_hidden_state [B, T, H], pooler_output [B, H],
        embedding [B, H], attentions [B, L, H, T, T] and token_ids [B, T]
        (INT64); None = every one but attentions, which comes only when
        named. layers, heads and fp16 select the attentions; head_mask,
        pooling, normalize and truncate as in encode().
        """
        request = oip.ModelInferRequest(model_name=self._model(model))
        raw: List[bytes] = []

        def add(name: str, datatype: str, shape: List[int], data: bytes
                ) -> None:
            request.inputs.add(name=name, datatype=datatype, shape=shape)
            raw.append(data)

        if _is_texts(inputs):
            seqs = make_sequences(inputs, pair)
            add("text", "BYTES", [len(seqs)], _bytes_tensor([s.text for s in seqs]))
            if pair is not None:
                add("text_pair", "BYTES", [len(seqs)],
                    _bytes_tensor([s.text_pair for s in seqs]))
            if attention_mask is not None or token_type_ids is not None:
                raise invalid_argument("attention_mask and token_type_ids go "
                                       "with token ids, not with text")
        else:
            if pair is not None:
                raise invalid_argument("pair goes with text, not with ids")
            rows = _id_rows(inputs, "inputs")
            t = max(len(r) for r in rows)
            ragged = any(len(r) != t for r in rows)
            padded = np.zeros((len(rows), t), dtype="<i8")
            for i, r in enumerate(rows):
                padded[i, :len(r)] = r
            add("input_ids", "INT64", [len(rows), t], padded.tobytes())
            if attention_mask is None and ragged:
                mask = np.zeros((len(rows), t), dtype="<i8")
                for i, r in enumerate(rows):
                    mask[i, :len(r)] = 1
                add("attention_mask", "INT64", [len(rows), t], mask.tobytes())
            for name, extra in (("attention_mask", attention_mask),
                                ("token_type_ids", token_type_ids)):
                if extra is None:
                    continue
                a = np.zeros((len(rows), t), dtype="<i8")
                for i, r in enumerate(_id_rows(extra, name)):
                    a[i, :len(r)] = r
                add(name, "INT64", [len(rows), t], a.tobytes())
        request.raw_input_contents.extend(raw)
        for name in outputs or []:
            request.outputs.add(name=name)

        p = request.parameters
        if pooling is not None:
            p["pooling"].string_param = pooling
        if normalize:
            p["normalize"].bool_param = True
        if truncate:
            p["truncate"].bool_param = True
        if layers:
            p["attention_layers"].string_param = ",".join(map(str, layers))
        if heads:
            p["attention_heads"].string_param = ",".join(map(str, heads))
        if fp16:
            p["attention_dtype"].string_param = "FP16"
        refs = self._expand_head_mask(head_mask, request.model_name)
        if refs:
            p["head_mask"].string_param = ",".join(f"{l}:{h}" for l, h in refs)

        r = self._call(self._oip, "ModelInfer", request, timeout)
        return _infer_outputs(r)

    # ---- helpers -------------------------------------------------------------

    def _expand_head_mask(self, mask: Optional[HeadMask], model: str
                          ) -> List[Tuple[int, int]]:
        """(layer, None) → every head of the layer (asks the model's head
        count once)."""
        if not mask:
            return []
        out: List[Tuple[int, int]] = []
        for layer, head in _parse_head_mask(mask):
            if head is not None:
                out.append((layer, head))
                continue
            if model not in self._num_heads:
                self._num_heads[model] = self.info(model).num_heads
            out.extend((layer, h) for h in range(self._num_heads[model]))
        return out


def _metadata_dict(call: Any) -> Dict[str, str]:
    try:
        pairs = call.initial_metadata() or ()
    except Exception:  # pylint: disable=broad-except (no metadata to give)
        return {}
    return {k: v if isinstance(v, str) else v.decode("latin-1")
            for k, v in pairs}


def _bytes_tensor(values: List[str]) -> bytes:
    """BYTES raw contents: each element a 4-byte little-endian length, then
    its bytes (as Triton sends them)."""
    out = bytearray()
    for v in values:
        b = v.encode("utf-8")
        out += struct.pack("<I", len(b)) + b
    return bytes(out)


_OIP_DTYPES = {"FP32": "<f4", "FP16": "<f2", "FP64": "<f8", "INT64": "<i8",
               "INT32": "<i4", "INT16": "<i2", "INT8": "i1", "UINT8": "u1",
               "BOOL": "?"}


def _infer_outputs(r: oip.ModelInferResponse) -> Dict[str, np.ndarray]:
    if r.raw_output_contents and len(r.raw_output_contents) != len(r.outputs):
        raise bad_response(f"{len(r.raw_output_contents)} raw_output_contents "
                           f"for {len(r.outputs)} outputs", "ModelInfer")
    out: Dict[str, np.ndarray] = {}
    for i, t in enumerate(r.outputs):
        shape = tuple(int(d) for d in t.shape)
        if t.datatype == "BYTES":
            raise bad_response(f"output {t.name} is BYTES", "ModelInfer")
        dtype = _OIP_DTYPES.get(t.datatype)
        if dtype is None or not r.raw_output_contents:
            raise bad_response(f"output {t.name}: datatype {t.datatype} "
                               "without raw contents", "ModelInfer")
        data = r.raw_output_contents[i]
        dt = np.dtype(dtype)
        if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(data):
            raise bad_response(f"output {t.name}: {len(data)} bytes for shape "
                               f"{list(shape)} of {t.datatype}", "ModelInfer")
        out[t.name] = np.frombuffer(data, dtype=dt).reshape(shape).astype(
            dt.newbyteorder("="))
    return out
