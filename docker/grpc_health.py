#!/usr/bin/python3
"""Waits until a gRPC server's grpc.health.v1.Health/Check says SERVING.

    grpc_health.py HOST:PORT [--service NAME] [--wait SECONDS]

Exit 0 when SERVING (prints the seconds waited), 1 when the wait runs out
(prints the last status or error). Needs only python3-grpcio: the request and
response are two tiny protobuf messages, encoded here by hand, so no generated
grpc_health module (not packaged in Debian 12) is needed.
"""
import argparse
import sys
import time

import grpc

# grpc.health.v1.HealthCheckResponse.ServingStatus
_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _request(service: str) -> bytes:
    """HealthCheckRequest{service = 1 (string)}; "" = the server as a whole."""
    data = service.encode()
    if len(data) > 127:
        raise ValueError("service name too long for this one-byte length")
    return (b"\x0a" + bytes([len(data)]) + data) if data else b""


def _status(response: bytes) -> int:
    """HealthCheckResponse{status = 1 (enum)}; absent = 0 (UNKNOWN)."""
    if len(response) >= 2 and response[0] == 0x08:
        return response[1]
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="HOST:PORT")
    parser.add_argument("--service", default="", help='"" = whole server')
    parser.add_argument("--wait", type=float, default=60.0, help="seconds")
    args = parser.parse_args()

    start = time.monotonic()
    deadline = start + args.wait
    last = "no answer"
    while time.monotonic() < deadline:
        # A fresh channel (and subchannel) per try: a channel that found
        # nobody listening backs off 1 s, 1.6 s, 2.6 s ... before it tries
        # again, which would add seconds to the measured start-up time.
        with grpc.insecure_channel(
            args.target, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            try:
                status = _status(check(_request(args.service), timeout=1.0))
                last = _STATUS.get(status, str(status))
                if status == 1:
                    print(f"{time.monotonic() - start:.2f}")
                    return 0
            except grpc.RpcError as e:
                last = f"{e.code().name}: {e.details()}"
        time.sleep(0.05)
    print(f"not SERVING after {args.wait:g} s: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
