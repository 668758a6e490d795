"""One run per output folder: an exclusive ``flock`` on ``DIR/.grader.lock`` for the whole run.

In: the output folder. Out: the lock, held until the run ends, or ``OutputBusy``
naming the run that holds it (the lock file says who: pid, user, host, since when).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from pathlib import Path

from grader.classrun.gradebook import current_user, now_utc


LOCK_FILE = ".grader.lock"


class OutputBusy(Exception):
    """Another run holds the output folder."""


class OutputLock:
    """An exclusive ``flock`` on ``DIR/.grader.lock``, held for the whole run; the file says who holds it."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> "OutputLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise OutputBusy(f"{self.out} is being graded by another run ({holder}); "
                             "wait for it to finish or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "user": current_user(), "host": socket.gethostname(),
                                  "since": now_utc()}).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _lock_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} by {info['user']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
