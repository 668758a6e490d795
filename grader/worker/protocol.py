"""Wire format between the trusted grader and the sandboxed worker.

A frame is ``[4-byte big-endian header length][JSON header][blob]*``. The header
is ``{"body": {...}, "blobs": [n0, n1, ...]}``: the message and the byte length
of each blob that follows it. An array inside a message is written as
``{"__ndarray__": i}`` and its blob is an ``.npy`` file; non-finite floats travel
as ``{"__float__": "nan"}`` so the JSON stays strict. No pickle is ever used in
either direction.

The reader treats every frame as hostile: the header must be strict JSON (no
``NaN`` literals) of bounded size and nesting; blob lengths must be plain
non-negative integers whose sum is bounded; an array reference must name an
existing blob; an ``.npy`` blob must hold a dtype without Python objects and
exactly the bytes its header announces (checked before anything is allocated).
Any violation raises ``ProtocolError``.
"""

from __future__ import annotations

import _socket
import io
import json
import math
import socket
import struct
import time
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

MAX_HEADER = 4 * 1024 * 1024
MAX_FRAME = 256 * 1024 * 1024
MAX_DEPTH = 64
MAX_ARRAY_DIMS = 32  # numpy's own limit is 64; no tensor a probe returns has more than a handful
_LEN = struct.Struct(">I")
# The socket methods of the C type, taken when this module is imported (in the worker: before any student
# code). The type is immutable, so patching ``socket.socket.sendall`` or a socket's attributes later never
# changes how a frame is sent or read; rebinding these names is caught by the worker's integrity check.
_SENDALL = _socket.socket.sendall
_SEND = _socket.socket.send
_RECV_INTO = _socket.socket.recv_into
_SETTIMEOUT = _socket.socket.settimeout


class ProtocolError(Exception):
    """A frame that is malformed, too large, or did not arrive in time."""


class ChannelClosed(ProtocolError):
    """The other side closed the channel (for the worker: it died)."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


# --------------------------------------------------------------------------- encoding

def _encode_value(value: Any, blobs: list[bytes], depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise TypeError("message nested too deeply")
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays cannot be sent")
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)  # keeps 0-d arrays 0-d; any memory layout is written correctly
        blobs.append(buf.getvalue())
        return {"__ndarray__": len(blobs) - 1}
    if isinstance(value, np.generic):
        return _encode_value(value.item(), blobs, depth + 1)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        value = float(value)  # a float subclass travels as its plain value
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _encode_value(v, blobs, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_value(v, blobs, depth + 1) for v in value]
    raise TypeError(f"cannot send a {type(value).__name__}")


def encode(message: dict[str, Any]) -> bytes:
    blobs: list[bytes] = []
    body = _encode_value(message, blobs)
    header = json.dumps({"body": body, "blobs": [len(b) for b in blobs]}, allow_nan=False).encode()
    if len(header) > MAX_HEADER:
        raise TypeError(f"message header of {len(header)} bytes is over the {MAX_HEADER}-byte limit")
    if sum(len(b) for b in blobs) > MAX_FRAME:
        raise TypeError(f"message arrays are over the {MAX_FRAME >> 20} MiB limit")
    return b"".join([_LEN.pack(len(header)), header, *blobs])


def round_trip(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` as the other side receives it: encoded into a frame and decoded again."""
    frame = encode(message)
    (length,) = _LEN.unpack_from(frame)
    return decode(frame[_LEN.size : _LEN.size + length], frame[_LEN.size + length :])


# --------------------------------------------------------------------------- decoding

def _load_array(blob: bytes | memoryview) -> np.ndarray:
    """Parse an ``.npy`` blob without pickle, checking its size before allocating."""
    f = io.BytesIO(blob)
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as e:  # noqa: BLE001 - any parse failure is a protocol error
        raise ProtocolError(f"bad array blob: {e}") from None
    if dtype.hasobject:
        raise ProtocolError("array blob holds Python objects (refused: arrays must be plain numbers)")
    if dtype.itemsize == 0:
        raise ProtocolError("array blob has a zero-size dtype")
    if not isinstance(shape, tuple) or not all(type(n) is int and 0 <= n < 1 << 40 for n in shape):
        raise ProtocolError("array blob has a bad shape")
    if len(shape) > MAX_ARRAY_DIMS:
        raise ProtocolError(f"array blob has {len(shape)} dimensions (at most {MAX_ARRAY_DIMS})")
    count = math.prod(shape)
    offset = f.tell()
    if count * dtype.itemsize != len(blob) - offset:
        raise ProtocolError(f"array blob holds {len(blob) - offset} data bytes, its header announces "
                            f"{count * dtype.itemsize}")
    try:
        array = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
        array = array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)
        return array.copy()
    except (ValueError, TypeError, MemoryError, OverflowError) as e:  # e.g. an empty array numpy cannot index
        raise ProtocolError(f"array blob cannot be read: {str(e)[:200]}") from None


def _decode_value(value: Any, blobs: list[Any], depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ProtocolError("message nested too deeply")
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            index = value["__ndarray__"]
            if type(index) is not int or not 0 <= index < len(blobs):
                raise ProtocolError("array reference out of range")
            return _load_array(blobs[index])
        if set(value) == {"__float__"}:
            if value["__float__"] not in ("nan", "inf", "-inf"):
                raise ProtocolError("bad float marker")
            return float(value["__float__"])
        return {k: _decode_value(v, blobs, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v, blobs, depth + 1) for v in value]
    return value


def _parse_header(header: bytes) -> dict[str, Any]:
    try:
        head = json.loads(header, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ProtocolError(f"header is not strict JSON: {str(e)[:200]}") from None
    if not isinstance(head, dict) or not isinstance(head.get("blobs"), list) or not isinstance(head.get("body"), dict):
        raise ProtocolError("header lacks body/blobs")
    for n in head["blobs"]:
        if type(n) is not int or n < 0:
            raise ProtocolError("bad blob length")
    if sum(head["blobs"]) > MAX_FRAME:
        raise ProtocolError("frame too large")
    return head


def decode(header: bytes, blob_data: bytes | bytearray) -> dict[str, Any]:
    head = _parse_header(header)
    lengths = head["blobs"]
    if sum(lengths) != len(blob_data):
        raise ProtocolError("blob lengths do not match the data")
    view, blobs, offset = memoryview(blob_data), [], 0
    for n in lengths:
        blobs.append(view[offset : offset + n])
        offset += n
    try:
        return _decode_value(head["body"], blobs)
    except RecursionError:
        raise ProtocolError("message nested too deeply") from None


def blob_total(header: bytes) -> int:
    return sum(_parse_header(header)["blobs"])


# --------------------------------------------------------------------------- sockets

def _recv_into(sock: socket.socket, buf: bytearray | memoryview, deadline: float | None) -> None:
    view, got, n = memoryview(buf), 0, len(buf)
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply in time")
            _SETTIMEOUT(sock, remaining)
        else:
            _SETTIMEOUT(sock, None)
        try:
            k = _RECV_INTO(sock, view[got:], min(n - got, 1 << 20))
        except socket.timeout:
            raise TimeoutError("no reply in time") from None
        if not k:
            raise ChannelClosed("channel closed")
        got += k


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    buf = bytearray(n)
    _recv_into(sock, buf, deadline)
    return bytes(buf)


def send(sock: socket.socket, message: dict[str, Any], deadline: float | None = None) -> None:
    """Send one frame; with ``deadline``, a peer that stops reading raises ``TimeoutError``."""
    data = encode(message)
    if deadline is None:
        _SETTIMEOUT(sock, None)
        _SENDALL(sock, data)
        return
    view, sent = memoryview(data), 0
    while sent < len(data):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the other side stopped reading")
        _SETTIMEOUT(sock, remaining)
        try:
            sent += _SEND(sock, view[sent:])
        except socket.timeout:
            raise TimeoutError("the other side stopped reading") from None


def recv(sock: socket.socket, deadline: float | None = None) -> dict[str, Any]:
    (length,) = _LEN.unpack(_recv_exact(sock, 4, deadline))
    if length > MAX_HEADER:
        raise ProtocolError("header too large")
    header = _recv_exact(sock, length, deadline)
    total = blob_total(header)
    blob_data = bytearray(total)
    _recv_into(sock, blob_data, deadline)
    return decode(header, blob_data)
