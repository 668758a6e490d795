"""The wire format between grader and worker: round trips, hostile frames, and the client's handling of replies."""

from __future__ import annotations

import io
import json
import math
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from grader.grading.client import SubmissionError, WorkerClient, clean_text
from grader.worker import protocol
from grader.worker.protocol import ProtocolError


def frame(header: Any, blobs: list[bytes] = (), raw_header: bytes | None = None) -> bytes:
    head = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack(">I", len(head)) + head + b"".join(blobs)


def recv_bytes(data: bytes, timeout: float = 2.0) -> dict[str, Any]:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        return protocol.recv(b, deadline=time.monotonic() + timeout)


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


# --------------------------------------------------------------------------- round trips

def test_round_trip_keeps_values_and_arrays() -> None:
    message = {
        "id": 2**61, "ok": True, "text": "héllo ✓ \x1b", "none": None, "flag": False,
        "floats": [0.5, math.nan, math.inf, -math.inf], "scalar": np.float32(1.5), "int": np.int64(7),
        "nested": {"tuple": (1, 2), "deep": [[{"a": [1]}]]},
        "arrays": [np.arange(12, dtype=np.float32).reshape(3, 4), np.array([True, False]),
                   np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)), np.array(3.0),
                   np.zeros((0, 5)), np.array([1 + 2j]), np.arange(4, dtype=">i4")],
    }
    a, b = socket.socketpair()
    with a, b:
        protocol.send(a, message)
        got = protocol.recv(b, deadline=time.monotonic() + 5)
    assert got["id"] == 2**61 and got["ok"] is True and got["text"] == message["text"] and got["none"] is None
    assert got["floats"][0] == 0.5 and math.isnan(got["floats"][1]) and got["floats"][2:] == [math.inf, -math.inf]
    assert got["scalar"] == 1.5 and got["int"] == 7 and got["nested"] == {"tuple": [1, 2], "deep": [[{"a": [1]}]]}
    for sent, back in zip(message["arrays"], got["arrays"]):
        assert isinstance(back, np.ndarray) and back.dtype == sent.dtype and back.shape == sent.shape
        np.testing.assert_array_equal(back, sent)
        assert back.flags.writeable


def test_subclasses_travel_as_plain_values() -> None:
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class Loud(float):
        def __repr__(self):
            return "42.0"

    raw = protocol.encode({"a": Liar(3), "b": Loud(0.25)})
    (n,) = struct.unpack(">I", raw[:4])
    got = protocol.decode(raw[4 : 4 + n], raw[4 + n :])
    assert type(got["a"]) is int and got["a"] == 3 and got["a"] != 4
    assert type(got["b"]) is float and got["b"] == 0.25


def test_encode_refuses_what_is_not_data() -> None:
    with pytest.raises(TypeError):
        protocol.encode({"x": np.array([object()], dtype=object)})
    with pytest.raises(TypeError):
        protocol.encode({"x": {1, 2}})
    with pytest.raises(TypeError):
        protocol.encode({"x": lambda: 0})


# --------------------------------------------------------------------------- hostile frames

@pytest.mark.parametrize("raw", [
    b'{"body": {"x": NaN}, "blobs": []}',
    b'{"body": {"x": Infinity}, "blobs": []}',
    b'{"body": {"x": -Infinity}, "blobs": []}',
    b'{"body": {"x": 1}, "blobs": []',            # truncated JSON
    b'\xff\xfe not utf-8',
    b'[1, 2, 3]',                                  # not an object
    b'{"blobs": []}',                              # no body
    b'{"body": {}, "blobs": [-1]}',
    b'{"body": {}, "blobs": [true]}',
    b'{"body": {}, "blobs": [1.5]}',
    b'{"body": {}, "blobs": "12"}',
    b'{"body": {"x": {"__float__": "1e999"}}, "blobs": []}',
    b'{"body": {"x": {"__ndarray__": 0}}, "blobs": []}',       # index out of range
    b'{"body": {"x": {"__ndarray__": -1}}, "blobs": []}',
    b'{"body": {"x": {"__ndarray__": true}}, "blobs": []}',
    b'{"body": {"x": {"__ndarray__": "0"}}, "blobs": []}',
    b'{"body": ' + b'[' * 5000 + b']' * 5000 + b', "blobs": []}',  # nesting bomb
])
def test_malformed_headers_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        recv_bytes(frame(None, raw_header=raw))


def test_oversize_header_is_refused_before_reading() -> None:
    with pytest.raises(ProtocolError, match="header too large"):
        recv_bytes(struct.pack(">I", protocol.MAX_HEADER + 1))


def test_oversize_frame_is_refused_before_reading() -> None:
    with pytest.raises(ProtocolError, match="too large"):
        recv_bytes(frame({"body": {}, "blobs": [protocol.MAX_FRAME, 1]}))


def test_blob_lengths_must_match_the_data() -> None:
    header = json.dumps({"body": {}, "blobs": [4]}).encode()
    with pytest.raises(ProtocolError):
        protocol.decode(header, b"123")


def test_pickle_bearing_npy_is_refused() -> None:
    evil = npy(np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ProtocolError, match="Python objects"):
        recv_bytes(frame({"body": {"x": {"__ndarray__": 0}}, "blobs": [len(evil)]}, [evil]))


def npy_with_header(descr: str, shape: str, data: bytes) -> bytes:
    """A hand-made .npy (version 1.0) whose header says whatever we like."""
    header = ("{'descr': %s, 'fortran_order': False, 'shape': %s, }" % (descr, shape)).encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def test_npy_whose_header_lies_about_its_size_is_refused_without_allocating() -> None:
    assert np.load(io.BytesIO(npy_with_header("'<f8'", "(2,)", b"\0" * 16))).shape == (2,)
    lying = npy_with_header("'<f8'", "(999999999999,)", b"\0" * 16)
    started = time.monotonic()
    with pytest.raises(ProtocolError, match="announces"):
        recv_bytes(frame({"body": {"x": {"__ndarray__": 0}}, "blobs": [len(lying)]}, [lying]))
    assert time.monotonic() - started < 1


def test_structured_dtype_hiding_objects_is_refused() -> None:
    blob = npy_with_header("[('a', '<f8'), ('b', '|O')]", "(1,)", b"\0" * 16)
    with pytest.raises(ProtocolError):
        recv_bytes(frame({"body": {"x": {"__ndarray__": 0}}, "blobs": [len(blob)]}, [blob]))


@pytest.mark.parametrize("blob", [b"", b"not an npy file at all", npy(np.zeros(3))[:-5], b"\x93NUMPY\x09\x00"])
def test_broken_npy_blobs_are_protocol_errors(blob: bytes) -> None:
    with pytest.raises(ProtocolError):
        recv_bytes(frame({"body": {"x": {"__ndarray__": 0}}, "blobs": [len(blob)]}, [blob]))


@pytest.mark.parametrize("shape", ["(0, 4611686018427387904)", "(%s)" % ", ".join(["1"] * 65), "(0, -1)",
                                   "(%s)" % ", ".join(["0"] * 33)])
def test_npy_with_an_impossible_shape_is_a_protocol_error(shape: str) -> None:
    blob = npy_with_header("'<f4'", shape, b"")
    with pytest.raises(ProtocolError):
        recv_bytes(frame({"body": {"x": {"__ndarray__": 0}}, "blobs": [len(blob)]}, [blob]))


def test_silence_and_hangups() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 10) + b'{"bo')  # a frame that never finishes
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            protocol.recv(b, deadline=time.monotonic() + 0.3)
        assert time.monotonic() - started < 1.5
    a, b = socket.socketpair()
    with b:
        a.close()
        with pytest.raises(protocol.ChannelClosed):
            protocol.recv(b, deadline=time.monotonic() + 1)


def test_send_to_a_peer_that_stops_reading_times_out() -> None:
    a, b = socket.socketpair()
    with a, b:
        big = {"x": np.zeros(16 << 20, dtype=np.uint8)}  # far more than the socket buffers hold
        with pytest.raises(TimeoutError):
            protocol.send(a, big, deadline=time.monotonic() + 0.3)


# --------------------------------------------------------------------------- the client

@dataclass
class FakeConfig:
    output_bytes: int = 100
    max_processes: int = 8


@dataclass
class FakeSandbox:
    """Spawns a scripted 'worker' thread instead of a sandboxed process."""

    script: Any
    config: FakeConfig = field(default_factory=FakeConfig)
    generation: int = 0
    spawned: int = 0
    kills: int = 0

    def spawn(self, files: dict[str, bytes]) -> socket.socket:
        ours, theirs = socket.socketpair()
        self.spawned += 1
        threading.Thread(target=self._serve, args=(theirs, self.spawned), daemon=True).start()
        return ours

    def _serve(self, sock: socket.socket, incarnation: int) -> None:
        with sock:
            while True:
                try:
                    req = protocol.recv(sock)
                except ProtocolError:
                    return
                for raw in self.script(req, incarnation):
                    sock.sendall(raw if isinstance(raw, bytes) else protocol.encode(raw))

    def kill_workers(self, ended: bool = False) -> None:
        self.kills += 1
        return None

    def oom_kills(self) -> int:
        return 0

    def pids_refused(self) -> int:
        return 0


def ok(req: dict[str, Any], result: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": req["id"], "ok": True, "result": result or {}, "stdout": "", "stdout_truncated": False, **extra}


def _probe(client: WorkerClient) -> dict[str, Any]:
    return client.probe("param_count", "blocks.py", "SkipBlock", "class", [4], {}, {}, timeout=2)


def test_a_reply_with_a_wrong_id_fails_only_that_request() -> None:
    calls = {"probe": 0}

    def script(req, incarnation):
        if req["op"] == "import":
            return [ok(req)]
        calls["probe"] += 1
        if calls["probe"] == 1:
            return [{**ok(req, {"total": 148}), "id": req["id"] + 1}]  # forged / stale
        return [ok(req, {"total": 76})]

    sandbox = FakeSandbox(script)
    client = WorkerClient(sandbox, {"blocks.py": b""})
    with pytest.raises(SubmissionError) as err:
        _probe(client)
    assert err.value.kind == "protocol"
    assert [e.kind for e in client.events] == ["refused"] and "another request" in client.events[0].detail
    assert _probe(client)["result"] == {"total": 76}  # a fresh worker answers the next request
    assert sandbox.kills == 1 and sandbox.spawned == 2
    assert "blocks.py" not in client.broken


def test_request_ids_are_not_guessable() -> None:
    seen = []

    def script(req, incarnation):
        seen.append(req["id"])
        return [ok(req)]

    client = WorkerClient(FakeSandbox(script), {"blocks.py": b""})
    for _ in range(3):
        _probe(client)
    assert len(set(seen)) == len(seen) == 4
    assert all(i > 2**32 for i in seen) or len({i % 1000 for i in seen}) > 1


def test_malformed_reply_fails_that_request_and_is_flagged() -> None:
    def script(req, incarnation):
        if req["op"] == "import":
            return [ok(req)]
        if incarnation == 1:
            return [frame(None, raw_header=b'{"body": {"id": NaN}, "blobs": []}')]
        return [ok(req, {"total": 1})]

    client = WorkerClient(FakeSandbox(script), {"blocks.py": b""})
    with pytest.raises(SubmissionError) as err:
        _probe(client)
    assert err.value.kind == "protocol" and client.events[0].kind == "refused"
    assert _probe(client)["result"] == {"total": 1}


def test_a_reply_with_an_impossible_array_is_refused_and_the_worker_replaced() -> None:
    blob = npy_with_header("'<f4'", "(0, 4611686018427387904)", b"")

    def script(req, incarnation):
        if req["op"] == "import":
            return [ok(req)]
        if incarnation == 1:
            body = json.dumps({"body": {**ok(req), "result": {"x": {"__ndarray__": 0}}}, "blobs": [len(blob)]}).encode()
            return [struct.pack(">I", len(body)) + body + blob]
        return [ok(req, {"total": 1})]

    sandbox = FakeSandbox(script)
    client = WorkerClient(sandbox, {"blocks.py": b""})
    with pytest.raises(SubmissionError) as err:
        _probe(client)
    assert err.value.kind == "protocol" and [e.kind for e in client.events] == ["refused"]
    assert _probe(client)["result"] == {"total": 1} and sandbox.kills == 1


def test_replies_past_the_byte_budget_fail_with_a_memory_flag() -> None:
    def script(req, incarnation):
        if req["op"] == "import":
            return [ok(req)]
        return [ok(req, {"output": np.zeros(1024, dtype=np.float64)})]  # 8 KiB per reply

    client = WorkerClient(FakeSandbox(script), {"blocks.py": b""}, reply_budget_bytes=20 * 1024)
    assert _probe(client)["result"]["output"].nbytes == 8192
    _probe(client)
    with pytest.raises(SubmissionError) as err:
        _probe(client)
    assert err.value.kind == "memory" and "too large" in err.value.message
    assert [e.kind for e in client.events] == ["memory"] and "MiB the grader keeps" in client.events[0].detail


def test_replies_are_cleaned_and_limits_become_events() -> None:
    def script(req, incarnation):
        if req["op"] == "import":
            return [ok(req)]
        return [{"id": req["id"], "ok": False, "stdout": "\x1b[31mred\x1b[0m \ud800", "stdout_truncated": True,
                 "events": [{"kind": "refused", "detail": "opened a \x1b[5mIPv4 network socket"}] * 50,
                 "error": {"kind": "memory", "message": "ran out\r\x00", "traceback": "\u202e"}}]

    client = WorkerClient(FakeSandbox(script), {"blocks.py": b""})
    with pytest.raises(SubmissionError) as err:
        _probe(client)
    e = err.value
    assert e.kind == "memory" and e.message == "ran out\\x0d\\x00" and e.traceback == "\\u202e"
    assert e.stdout == "\\x1b[31mred\\x1b[0m \\ud800"
    kinds = [ev.kind for ev in client.events]
    assert kinds.count("refused") == 1 and "output" in kinds and "memory" in kinds  # repeated events once each
    assert all("\x1b" not in ev.detail for ev in client.events)


def test_a_silent_worker_times_out_and_is_replaced() -> None:
    def script(req, incarnation):
        if req["op"] == "import":
            return [ok(req)]
        return [] if incarnation == 1 else [ok(req, {"total": 2})]

    sandbox = FakeSandbox(script)
    client = WorkerClient(sandbox, {"blocks.py": b""})
    with pytest.raises(SubmissionError) as err:
        client.probe("param_count", "blocks.py", "SkipBlock", "class", [4], {}, {}, timeout=0.3)
    assert err.value.kind == "timeout" and client.events[0].kind == "timeout"
    assert _probe(client)["result"] == {"total": 2}


def test_clean_text() -> None:
    assert clean_text("a\tb\nc\r\nd") == "a\tb\nc\nd"
    assert clean_text("\x1b[2J\x07\x7f\x9b") == "\\x1b[2J\\x07\\x7f\\x9b"
    assert clean_text("<script>") == "<script>"  # HTML stays text: the report escapes it
    assert clean_text("é ✓ 日本") == "é ✓ 日本"
