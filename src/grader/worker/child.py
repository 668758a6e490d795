"""One submission's worker: imports the student's files on request and runs probes.

Requests (JSON): ``{"id", "op": "import", "file"}`` or
``{"id", "op": "probe", "probe", "file", "target", "args", "kwargs", "construct", "params"}``.
Replies: ``{"id", "ok": true, "result", "stdout", "stdout_truncated"}`` or
``{"id", "ok": false, "error": {"kind", "message", "traceback"}, ...}``.
"""

from __future__ import annotations

import importlib
import inspect
import io
import os
import socket
import sys
import traceback
from typing import Any

from . import protocol
from .probes import PROBES, ProbeFailure


class CappedOutput(io.TextIOBase):
    """Keeps the first ``limit`` characters a submission prints and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = str(s)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def take(self) -> tuple[str, bool]:
        text, truncated = "".join(self.parts), self.dropped > 0
        self.parts, self.kept, self.dropped = [], 0, 0
        return text, truncated


def _trimmed_traceback(exc: BaseException, folder: str) -> str:
    """The traceback frames that are in the student's own files, and the exception line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(folder)]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines).replace(folder + "/", "")[-4000:]


def _error(kind: str, message: str, exc: BaseException | None, folder: str) -> dict[str, Any]:
    return {"kind": kind, "message": message[:2000], "traceback": _trimmed_traceback(exc, folder) if exc else ""}


class Child:
    def __init__(self, sock: socket.socket, folder: str, output_limit: int) -> None:
        self.sock = sock
        self.folder = folder
        self.out = CappedOutput(output_limit)

    def import_file(self, file: str) -> Any:
        name = file[:-3] if file.endswith(".py") else file
        return importlib.import_module(name)

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "import":
            try:
                self.import_file(req["file"])
            except MemoryError as e:
                return {"ok": False, "error": _error("memory", "ran out of memory while importing", e, self.folder)}
            except SystemExit as e:
                return {"ok": False, "error": _error("import", f"{req['file']} called sys.exit({e.code!r}) while being imported", None, self.folder)}
            except BaseException as e:  # noqa: BLE001 - a student's module may raise anything
                return {"ok": False, "error": _error("import", f"{req['file']} failed to import: {type(e).__name__}: {e}", e, self.folder)}
            return {"ok": True, "result": {}}
        if op == "probe":
            return self.run_probe(req)
        return {"ok": False, "error": {"kind": "protocol", "message": f"unknown op {op!r}", "traceback": ""}}

    def run_probe(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            module = self.import_file(req["file"])
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error": _error("import", f"{req['file']} failed to import: {type(e).__name__}: {e}", e, self.folder)}
        target_name = req["target"]
        target = getattr(module, target_name, None)
        if target is None:
            return {"ok": False, "error": _error("missing", f"{req['file']} defines no {target_name}", None, self.folder)}
        if req.get("kind", "class") == "class" and not inspect.isclass(target):
            return {"ok": False, "error": _error("not_class", f"{target_name} is a {type(target).__name__}, not a class", None, self.folder)}
        if req.get("kind") == "function" and not callable(target):
            return {"ok": False, "error": _error("not_callable", f"{target_name} is not callable", None, self.folder)}
        args, kwargs = req.get("args", []), req.get("kwargs", {})
        construct = req.get("construct", True)

        def build() -> Any:
            try:
                return target(*args, **kwargs) if construct else target
            except NotImplementedError:
                raise
            except TypeError as e:
                raise _ConstructionError(e) from e

        fn = PROBES.get(req["probe"])
        if fn is None:
            return {"ok": False, "error": {"kind": "protocol", "message": f"unknown probe {req['probe']!r}", "traceback": ""}}
        try:
            result = fn(build, **req.get("params", {}))
        except _ConstructionError as e:
            call = f"{target_name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})"
            return {"ok": False, "error": _error("signature", f"{call} raised TypeError: {e.__cause__}", e.__cause__, self.folder)}
        except NotImplementedError as e:
            return {"ok": False, "error": _error("not_implemented", f"{target_name} is not implemented yet ({e})", e, self.folder)}
        except ProbeFailure as e:
            return {"ok": False, "error": _error("wrong_type", str(e), None, self.folder)}
        except MemoryError as e:
            return {"ok": False, "error": _error("memory", "ran out of memory", e, self.folder)}
        except SystemExit as e:
            return {"ok": False, "error": _error("exit", f"your code called sys.exit({e.code!r})", None, self.folder)}
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error": _error("exception", f"{type(e).__name__}: {e}", e, self.folder)}
        return {"ok": True, "result": result}

    def serve(self) -> None:
        while True:
            try:
                req = protocol.recv(self.sock)
            except protocol.ChannelClosed:
                return
            reply = self.handle(req)
            text, truncated = self.out.take()
            reply.update(id=req.get("id"), stdout=text, stdout_truncated=truncated)
            try:
                protocol.send(self.sock, reply)
            except TypeError as e:
                protocol.send(self.sock, {"id": req.get("id"), "ok": False, "stdout": text, "stdout_truncated": truncated,
                                          "error": {"kind": "exception", "message": f"result could not be sent: {e}", "traceback": ""}})


class _ConstructionError(Exception):
    pass


def run(sock: socket.socket, folder: str, output_limit: int) -> None:
    child = Child(sock, folder, output_limit)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = child.out  # type: ignore[assignment]
    sys.stdin = io.StringIO()
    sys.path.insert(0, folder)
    os.chdir(folder)
    child.serve()
