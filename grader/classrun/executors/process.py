"""A local grading process: grades one job at a time from a pipe, and stops cleanly however it is stopped.

In: jobs over a pipe from the local executor, and a lifeline whose closing (or the
parent's death) stops it at once. Out: one reply per job (its summary or its error),
each with the sandbox's cgroups, so the parent can remove them if this process is killed.
On a stop no result is written any more, the sandboxes' processes are killed and
reaped and their cgroups removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing.connection as mpc
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from grader.classrun.jobs import (_OUTPUT_LOCK, JobError, WorkerSettings, _sandbox_cgroups, close_sessions,
                                  configure_worker, grade_job, session_for, start_sandbox)


PR_SET_CHILD_SUBREAPER = 36


def _sandbox_cgroups_of(pid: int) -> set[str]:
    """The sandbox cgroups (``grader-*``, made by ``grader.grading.cgroups.Cgroups``) that ``pid`` is in."""
    found = set()
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if not Path(path).name.startswith("grader-"):
                continue
            for c in controllers.split(","):
                if c in ("pids", "memory"):
                    found.add(f"/sys/fs/cgroup/{c}{path}")
    return found


def _end_descendants() -> None:
    """SIGKILL every process below this one and remove the cgroups they were in (a sandbox still starting
    when we were told to stop has no session to close it)."""
    from grader.grading.cgroups import Cgroups
    from grader.worker.zygote import descendants

    pids = descendants(os.getpid())
    groups = set().union(*(_sandbox_cgroups_of(pid) for pid in pids)) - _sandbox_cgroups_of(os.getpid())
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    with contextlib.suppress(ChildProcessError):   # reap them all (orphans come to us: we are a subreaper)
        while time.monotonic() < deadline:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.01)
    if groups:
        Cgroups(paths=[Path(g) for g in sorted(groups)]).remove()


def _hard_exit(code: int) -> None:
    """Stop now: no result is written from here on (one being written is finished first, so every
    result on disk comes from an intact sandbox), the sandboxes' processes are killed and reaped, their
    cgroups removed."""
    _OUTPUT_LOCK.acquire()
    _end_descendants()
    close_sessions(hard=True)
    os._exit(code)


def _on_term(signum: int, frame: Any) -> None:
    _hard_exit(128 + signum)


def _watch_lifeline(fd: int) -> None:
    """A thread in each worker: the parent never writes to the lifeline, so a read returns when the
    parent closes it (to stop us now) or dies (even by SIGKILL). A signal would not do: it may land on one
    of torch's threads while the main thread waits on the sandbox."""
    with contextlib.suppress(OSError):
        while os.read(fd, 1):
            pass
    _hard_exit(1)


def _worker_main(conn: mpc.Connection, lifeline: int, inherited: list[Any], settings: WorkerSettings,
                 spec_file: str) -> None:
    """A grading process: starts its sandbox, then grades one job at a time from ``conn`` until told
    to stop (``None``) or the pipe closes. Every reply carries the sandbox's cgroups."""
    for item in inherited:   # the other workers' pipe and lifeline ends, copied by fork
        if isinstance(item, int):
            os.close(item)
        else:
            item.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle; it closes our lifeline
    signal.signal(signal.SIGTERM, _on_term)
    with contextlib.suppress(OSError, AttributeError):   # a killed sandbox's orphans come to us, to reap
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    threading.Thread(target=_watch_lifeline, args=(lifeline,), name="grader-lifeline", daemon=True).start()
    early = start_sandbox(settings, spec_file)   # its zygote imports torch while this process does below
    lanes = [box for box in (start_sandbox(settings, spec_file) for _ in range(settings.lanes - 1)) if box is not None]
    configure_worker(settings)
    try:
        try:
            session_for(spec_file, sandbox=early, lanes=lanes).sandbox   # ready now; a failure shows in the first job
        except Exception:  # noqa: BLE001
            pass
        # What this process made until now (its imports, its session) lives as long as it does: frozen, the
        # collector never walks it again (a full collection over torch's objects costs 0.2-0.4 s).
        gc.freeze()
        conn.send(("ready", None, _sandbox_cgroups()))
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                break
            if job is None:
                break
            try:
                reply = ("done", grade_job(job))
            except Exception as e:  # noqa: BLE001
                reply = ("error", str(e) if isinstance(e, JobError) else f"{type(e).__name__}: {e}")
            conn.send((*reply, _sandbox_cgroups()))
    finally:
        close_sessions()
