"""The one exception type of the package."""

from typing import Optional

import grpc


class AttnserveError(Exception):
    """A call that failed, or arguments the client refused before calling.

    Attributes:
        code: the gRPC status code (``grpc.StatusCode``), as the server sent it
            (``INVALID_ARGUMENT``, ``NOT_FOUND``, ``RESOURCE_EXHAUSTED``, ...),
            or as gRPC reported it (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``).
            Arguments the client can check itself are ``INVALID_ARGUMENT``; a
            response that does not match its request is ``DATA_LOSS``.
        message: the server's message (it names the field, value and limit).
        method: the RPC, e.g. ``"Encode"``; empty for a client-side refusal.

    ``str(error)`` is ``"CODE: message"``, as attnctl prints it.
    """

    def __init__(self, code: grpc.StatusCode, message: str, method: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.method = method

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, method: str) -> "AttnserveError":
        """Wraps what a gRPC stub raised (a ``grpc.Call``)."""
        code: Optional[grpc.StatusCode] = getattr(error, "code", lambda: None)()
        details: Optional[str] = getattr(error, "details", lambda: None)()
        return cls(code or grpc.StatusCode.UNKNOWN,
                   details or "(the server sent no message)", method)

    @classmethod
    def from_code_number(cls, number: int, message: str,
                         method: str = "") -> "AttnserveError":
        """From a numeric gRPC status code (EncodeResponse.error.code)."""
        for code in grpc.StatusCode:
            if code.value[0] == number:
                return cls(code, message, method)
        return cls(grpc.StatusCode.UNKNOWN, f"(code {number}) {message}", method)


def invalid_argument(message: str) -> AttnserveError:
    """A refusal by the client, before any call."""
    return AttnserveError(grpc.StatusCode.INVALID_ARGUMENT, message)


def bad_response(message: str, method: str) -> AttnserveError:
    """A response that does not match its request."""
    return AttnserveError(grpc.StatusCode.DATA_LOSS, f"bad response: {message}", method)
