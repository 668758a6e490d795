"""Wire format between the trusted grader and the sandboxed worker.

A frame is ``[4-byte big-endian header length][JSON header][blob]*``. The header
lists blob lengths under ``"blobs"``; an array inside a message is written as
``{"__ndarray__": i}`` and its blob is an ``.npy`` file read with
``allow_pickle=False``. Non-finite floats travel as ``{"__float__": "nan"}`` so
the JSON stays strict. No pickle is ever used in either direction.
"""

from __future__ import annotations

import io
import json
import math
import socket
import struct
import time
from typing import Any

import numpy as np

MAX_HEADER = 4 * 1024 * 1024
MAX_FRAME = 512 * 1024 * 1024
_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that is malformed, too large, or did not arrive in time."""


class ChannelClosed(ProtocolError):
    """The other side closed the channel (for the worker: it died)."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def _encode_value(value: Any, blobs: list[bytes]) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays cannot be sent")
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        blobs.append(buf.getvalue())
        return {"__ndarray__": len(blobs) - 1}
    if isinstance(value, np.generic):
        return _encode_value(value.item(), blobs)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, dict):
        return {str(k): _encode_value(v, blobs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_value(v, blobs) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__}")


def _decode_value(value: Any, blobs: list[bytes]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            index = value["__ndarray__"]
            if not isinstance(index, int) or not 0 <= index < len(blobs):
                raise ProtocolError("array reference out of range")
            try:
                return np.load(io.BytesIO(blobs[index]), allow_pickle=False)
            except Exception as e:  # noqa: BLE001 - any parse failure is a protocol error
                raise ProtocolError(f"bad array blob: {e}") from None
        if set(value) == {"__float__"}:
            if value["__float__"] not in ("nan", "inf", "-inf"):
                raise ProtocolError("bad float marker")
            return float(value["__float__"])
        return {k: _decode_value(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v, blobs) for v in value]
    return value


def encode(message: dict[str, Any]) -> bytes:
    blobs: list[bytes] = []
    body = _encode_value(message, blobs)
    header = json.dumps({"body": body, "blobs": [len(b) for b in blobs]}, allow_nan=False).encode()
    return b"".join([_LEN.pack(len(header)), header, *blobs])


def decode(header: bytes, blob_data: bytes) -> dict[str, Any]:
    try:
        head = json.loads(header, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"header is not strict JSON: {e}") from None
    if not isinstance(head, dict) or not isinstance(head.get("blobs"), list) or not isinstance(head.get("body"), dict):
        raise ProtocolError("header lacks body/blobs")
    blobs, offset = [], 0
    for n in head["blobs"]:
        if not isinstance(n, int) or n < 0:
            raise ProtocolError("bad blob length")
        blobs.append(blob_data[offset : offset + n])
        offset += n
    return _decode_value(head["body"], blobs)


def blob_total(header: bytes) -> int:
    try:
        head = json.loads(header, parse_constant=_reject_constant)
        total = sum(head["blobs"])
    except Exception:  # noqa: BLE001
        raise ProtocolError("header is not a valid frame header") from None
    if not isinstance(total, int) or total > MAX_FRAME:
        raise ProtocolError("frame too large")
    return total


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply in time")
            sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(n - got, 1 << 20))
        except socket.timeout:
            raise TimeoutError("no reply in time") from None
        if not chunk:
            raise ChannelClosed("channel closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.settimeout(None)
    sock.sendall(encode(message))


def recv(sock: socket.socket, deadline: float | None = None) -> dict[str, Any]:
    (length,) = _LEN.unpack(_recv_exact(sock, 4, deadline))
    if length > MAX_HEADER:
        raise ProtocolError("header too large")
    header = _recv_exact(sock, length, deadline)
    blob_data = _recv_exact(sock, blob_total(header), deadline)
    return decode(header, blob_data)
