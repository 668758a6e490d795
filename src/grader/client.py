"""The trusted side's handle on one submission's worker.

Every request carries a fresh id; a reply that is late, malformed or for another
request fails that request only. After a timeout or a crash every process in
the sandbox is killed and the next request gets a fresh worker (the student's
files are sent again; imports are repeated as needed).
"""

from __future__ import annotations

import itertools
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from grader.sandbox import Sandbox
from grader.worker import protocol


class SubmissionError(Exception):
    """The submission could not answer a request; ``kind`` says why, ``message`` is for the student."""

    def __init__(self, kind: str, message: str, traceback: str = "", stdout: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.traceback = traceback
        self.stdout = stdout


@dataclass
class Event:
    """Something that happened in the worker that the instructor may want to know about."""

    kind: str
    detail: str


@dataclass
class WorkerClient:
    sandbox: Sandbox
    files: dict[str, bytes]
    import_timeout_s: float = 20.0
    sock: socket.socket | None = None
    imported: set[str] = field(default_factory=set)
    broken: dict[str, SubmissionError] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    stdout_log: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _ensure(self) -> socket.socket:
        if self.sock is None:
            self.sock = self.sandbox.spawn(self.files)
            self.imported = set()
        return self.sock

    def restart(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.sandbox.kill_workers()

    def _exchange(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        sock = self._ensure()
        request_id = next(self._ids)
        oom_before = self.sandbox.oom_kills()
        try:
            protocol.send(sock, {**message, "id": request_id})
            reply = protocol.recv(sock, deadline=time.monotonic() + timeout)
        except TimeoutError:
            self.restart()
            self.events.append(Event("timeout", f"no answer within {timeout:g} s"))
            raise SubmissionError("timeout", f"your code did not finish within {timeout:g} s "
                                  "(an infinite loop, or far too much computation); the worker was stopped") from None
        except (protocol.ChannelClosed, ConnectionError, BrokenPipeError):
            self.restart()
            if self.sandbox.oom_kills() > oom_before:
                self.events.append(Event("memory", "worker killed at the memory limit"))
                raise SubmissionError("memory", "your code used more memory than allowed and was stopped") from None
            self.events.append(Event("crash", "worker ended during a request"))
            raise SubmissionError("crash", "the worker process ended while running your code "
                                  "(os._exit, a crash, or a signal)") from None
        except protocol.ProtocolError as e:
            self.restart()
            self.events.append(Event("refused", f"malformed reply: {e}"))
            raise SubmissionError("protocol", "the worker sent a reply that is not valid; it was stopped") from None
        if reply.get("id") != request_id:
            self.restart()
            self.events.append(Event("refused", "reply carried another request's id"))
            raise SubmissionError("protocol", "the worker answered with a reply for another request; it was stopped")
        stdout = reply.get("stdout") if isinstance(reply.get("stdout"), str) else ""
        if stdout:
            self.stdout_log.append(stdout)
        if reply.get("stdout_truncated"):
            self.events.append(Event("output", "printed output was truncated"))
        if reply.get("ok") is True and isinstance(reply.get("result"), dict):
            return {"result": reply["result"], "stdout": stdout}
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        raise SubmissionError(str(error.get("kind", "protocol"))[:40], str(error.get("message", "malformed error reply"))[:2000],
                              str(error.get("traceback", ""))[:4000], stdout)

    def import_file(self, file: str) -> None:
        if file in self.broken:
            raise self.broken[file]
        if file not in self.files:
            error = SubmissionError("missing", f"{file} is missing from your submission")
            self.broken[file] = error
            raise error
        self._ensure()
        if file in self.imported:
            return
        try:
            self._exchange({"op": "import", "file": file}, self.import_timeout_s)
        except SubmissionError as e:
            if e.kind == "timeout":
                e = SubmissionError("import", f"importing {file} did not finish within {self.import_timeout_s:g} s")
            elif e.kind == "crash":
                e = SubmissionError("import", f"importing {file} ended the worker process (os._exit or a crash)")
            self.broken[file] = e
            raise e from None
        self.imported.add(file)

    def probe(self, probe: str, file: str, target: str, kind: str, args: list[Any], kwargs: dict[str, Any],
              params: dict[str, Any], timeout: float, construct: bool = True) -> dict[str, Any]:
        self.import_file(file)
        reply = self._exchange({"op": "probe", "probe": probe, "file": file, "target": target, "kind": kind,
                                "args": list(args), "kwargs": dict(kwargs), "params": params,
                                "construct": construct}, timeout)
        return reply

    def close(self) -> None:
        self.restart()
