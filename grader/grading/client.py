"""The trusted side's handle on one submission's worker.

Every request carries a fresh random id; a reply that is late, malformed or for
another request fails that request only. After a timeout or a crash every
process in the sandbox is killed and the next request gets a fresh worker (the
student's files are sent again; imports are repeated as needed).

Everything a reply carries is data from an untrusted process: strings are
cleaned (control characters and lone surrogates made visible as ``\\xNN``
escapes, so no terminal escape sequence or unencodable text reaches a result),
sizes are capped, and anything the instructor should know about (a limit hit,
an attempt the sandbox refused) becomes an ``Event`` naming the test it
happened in.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.grading.sandbox import Sandbox, SandboxError
from grader.worker import protocol

MAX_EVENTS = 200
# Array bytes the trusted side accepts from one submission's replies (suites keep replies for the whole
# submission): a submission returning huge tensors fails its requests instead of growing the grader.
REPLY_BUDGET_BYTES = 64 * 1024 * 1024  # the Day 9 reference needs about 1.1 MB in all
# C0/C1 controls but tab and newline, DEL, line/paragraph separators, bidirectional
# overrides (which can make displayed text read differently) and lone surrogates.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_char(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text: str, limit: int | None = None) -> str:
    """Text from the worker made safe to store and show: control characters and lone surrogates escaped."""
    text = _CONTROL.sub(_escape_char, text.replace("\r\n", "\n"))
    return text if limit is None or len(text) <= limit else text[:limit]


def clean_data(value: Any, depth: int = 0) -> Any:
    """``clean_text`` applied to every string (keys included) inside a decoded reply."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): clean_data(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_data(v, depth + 1) for v in value]
    return value


def current_test() -> str | None:
    """The test pytest is running now (from ``PYTEST_CURRENT_TEST``), as its name in the results."""
    running = os.environ.get("PYTEST_CURRENT_TEST")
    if not running:
        return None
    nodeid = running.rsplit(" (", 1)[0]
    return nodeid.split("::", 1)[-1]


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
    """Something that happened in the worker that the instructor may want to know about.

    ``kind`` is one of ``timeout``, ``memory``, ``output``, ``crash`` (a limit was
    hit or the worker ended) or ``refused`` (the sandbox refused something the
    submission tried: a network socket, a signal to the grader, a malformed or
    forged reply, a fork past the process limit). A plain exception in student
    code is never an event: it is the test's failure message.
    """

    kind: str
    detail: str
    test: str | None = None


def _array_bytes(value: Any) -> int:
    """Bytes held by the arrays inside a decoded reply."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_array_bytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_array_bytes(v) for v in value)
    return 0


def _random_ids() -> Any:
    while True:
        yield secrets.randbits(62)


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
    _ids: Any = field(default_factory=_random_ids)
    _generation: int | None = None
    reply_budget_bytes: int = REPLY_BUDGET_BYTES
    reply_bytes: int = 0

    def _event(self, kind: str, detail: str) -> None:
        event = Event(kind, clean_text(detail, 500), current_test())
        if len(self.events) < MAX_EVENTS and event not in self.events:
            self.events.append(event)

    def _ensure(self) -> socket.socket:
        if self.sock is None:
            generation = self.sandbox.generation
            try:
                self.sock = self.sandbox.spawn(self.files)
            except SandboxError as e:
                self._event("crash", f"the sandbox could not start a worker: {e}")
                raise SubmissionError("crash", "the grader could not start a worker for your code") from None
            if self._generation is not None and self.sandbox.generation != generation:
                self._event("crash", "the sandbox had to be restarted (its parent process had ended)")
            self._generation = self.sandbox.generation
            self.imported = set()
        return self.sock

    def restart(self, ended: bool = False) -> str | None:
        """Stop the worker (the next request gets a fresh one); returns how it ended if it ended by itself.

        ``ended``: its channel closed, so it is probably already dying."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        return self.sandbox.kill_workers(ended=ended)

    def _exchange(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        sock = self._ensure()
        request_id = next(self._ids)
        oom_before = self.sandbox.oom_kills()
        pids_before = self.sandbox.pids_refused()
        deadline = time.monotonic() + timeout
        try:
            try:
                protocol.send(sock, {**message, "id": request_id}, deadline=deadline)
                reply = protocol.recv(sock, deadline=deadline)
            finally:
                refused_forks = self.sandbox.pids_refused() - pids_before
                if refused_forks > 0:
                    self._event("refused", f"process limit ({self.sandbox.config.max_processes}) reached: "
                                f"{refused_forks} fork(s) refused")
        except TimeoutError:
            self.restart()
            self._event("timeout", f"no answer within {timeout:g} s")
            raise SubmissionError("timeout", f"your code did not finish within {timeout:g} s "
                                  "(an infinite loop, or far too much computation); the worker was stopped") from None
        except (protocol.ChannelClosed, OSError):
            how = self.restart(ended=True)
            if self.sandbox.oom_kills() > oom_before:
                self._event("memory", "worker killed at the memory limit")
                raise SubmissionError("memory", "your code used more memory than allowed and was stopped") from None
            self._event("crash", "worker ended during a request" + (f" ({how})" if how else ""))
            raise SubmissionError("crash", "the worker process ended while running your code "
                                  "(os._exit, a crash, or a signal)") from None
        except protocol.ProtocolError as e:
            self.restart()
            self._event("refused", f"malformed reply: {e}")
            raise SubmissionError("protocol", "the worker sent a reply that is not valid; it was stopped") from None
        if reply.get("id") != request_id:
            self.restart()
            self._event("refused", "reply carried another request's id (a forged or stale reply)")
            raise SubmissionError("protocol", "the worker answered with a reply for another request; it was stopped")
        reply = clean_data(reply)
        limit = self.sandbox.config.output_bytes
        stdout = reply.get("stdout") if isinstance(reply.get("stdout"), str) else ""
        stdout = stdout[: limit + 200]
        if stdout:
            self.stdout_log.append(stdout)
        if reply.get("stdout_truncated"):
            self._event("output", f"printed output was truncated to {limit} characters")
        events = reply.get("events") if isinstance(reply.get("events"), list) else []
        for item in events[:20]:
            if isinstance(item, dict) and item.get("kind") == "refused":
                self._event("refused", str(item.get("detail", "")))
        if reply.get("ok") is True and isinstance(reply.get("result"), dict):
            self.reply_bytes += _array_bytes(reply["result"])
            if self.reply_bytes > self.reply_budget_bytes:
                self._event("memory", f"the submission's answers passed the {self.reply_budget_bytes >> 20} MiB the "
                            "grader keeps per submission; the requests past it failed")
                raise SubmissionError("memory", f"your code's results are too large (over "
                                      f"{self.reply_budget_bytes >> 20} MiB in all for this submission): this check "
                                      "fails; return tensors of the sizes the exercise asks for")
            materialised = reply.get("materialised")
            return {"result": reply["result"], "stdout": stdout,
                    "stand_ins_built": reply.get("stand_ins_built") if isinstance(reply.get("stand_ins_built"), int) else 0,
                    "materialised": [list(s) for s in materialised[:4] if isinstance(s, list)]
                    if isinstance(materialised, list) else []}
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        kind = str(error.get("kind", "protocol"))[:40]
        if kind == "memory":
            self._event("memory", "the worker ran out of memory (MemoryError)")
        if kind == "reply_path":
            self.restart()
            self._event("refused", "the submission changed how the worker sends its answers; the request failed "
                        "and the worker was replaced")
        raise SubmissionError(kind, str(error.get("message", "malformed error reply"))[:2000],
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
            elif e.kind not in ("import", "missing", "memory"):
                e = SubmissionError("import", f"importing {file} failed: {e.message}", e.traceback, e.stdout)
            self.broken[file] = e
            raise e from None
        self.imported.add(file)

    def probe(self, probe: str, file: str, target: str, kind: str, args: list[Any], kwargs: dict[str, Any],
              params: dict[str, Any], timeout: float, construct: bool = True,
              stand_ins: dict[str, Any] | None = None, dry_run_input: list[int] | None = None) -> dict[str, Any]:
        """Run ``probe`` on the submission's ``target``.

        ``stand_ins`` (``{"source", "replace": {name: file}}``) puts the course's stand-ins in place of
        those blocks while it runs; ``dry_run_input`` materialises lazy layers first.
        """
        self.import_file(file)
        message = {"op": "probe", "probe": probe, "file": file, "target": target, "kind": kind, "args": list(args),
                   "kwargs": dict(kwargs), "params": params, "construct": construct}
        if stand_ins:
            message["stand_ins"] = stand_ins
        if dry_run_input:
            message["dry_run_input"] = list(dry_run_input)
        return self._exchange(message, timeout)

    def close(self) -> None:
        self.restart()
