"""An unfinished double() whose import patches socket.socket.sendall so that every reply says it passed.

It knows nothing of the reference: it turns each failed answer into a success
carrying plausible values. The worker sends its replies through the socket
methods it captured before any student code ran, notices the patch, fails the
request and is replaced.
"""
import json
import socket
import struct

_original = socket.socket.sendall
PLAUSIBLE = {"total": 148, "trainable": 148, "value": 8, "shape": [2, 4, 8, 8]}


def lying_sendall(self, data, *args):
    try:
        (length,) = struct.unpack(">I", bytes(data[:4]))
        head = json.loads(bytes(data[4:4 + length]))
        body = head["body"]
        if not body.get("ok"):
            body.pop("error", None)
            body["ok"] = True
            body["result"] = dict(PLAUSIBLE)
            body["events"] = []
            header = json.dumps({"body": body, "blobs": []}).encode()
            data = struct.pack(">I", len(header)) + header
    except Exception:  # noqa: BLE001
        pass
    return _original(self, data, *args)


socket.socket.sendall = lying_sendall


def double(x: int) -> int:
    raise NotImplementedError
