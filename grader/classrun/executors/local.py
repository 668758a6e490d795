"""The default executor, ``local``: N forked grading processes on this machine.

In: the run's context, then jobs. Out: each job's summary through its future.
It imports the engine and reads the reference's cached results here once (the
reference and torch too when there are none), then forks the grading processes
(``executors.process``) before any tensor operation, and never after CUDA
starts, so they share what was loaded; each keeps one session for all its jobs.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.classrun.executors.base import ExecutorContext
from grader.classrun.executors.process import _worker_main
from grader.classrun.jobs import _SPECS, Job, JobError, WorkerSettings, spec_file_of
from grader.grading.gpu import cuda_usable
from grader.spec import AssignmentSpec


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


ENV_THREADS = "GRADER_THREADS"
ENV_LANES = "GRADER_LANES"
MAX_LANES = 2


def threads_per_worker() -> int:
    """torch's threads in each grading process's sandbox: ``$GRADER_THREADS``, else 1, however many workers.

    The checks' tensors are small: a second thread bought nothing on an idle 2-core machine (a lone
    submission's checks took 8.85 s with two, against about 8 s with one each in a class run), and cost
    2.5-4x the time when other work shared the cores (docs/performance.md). One thread also computes what
    the corpus, the audit and a class run compute.
    """
    try:
        return max(1, int(os.environ.get(ENV_THREADS) or 1))
    except ValueError:
        return 1


LANE_MEMORY_MB = 1536   # a lane's zygote and worker: about 0.7 GB peak each (docs/operations.md)


def available_memory_mb() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo``, in MiB; None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def lanes_for_one(threads: int, gpu: bool) -> int:
    """How many sandboxes grade a submission graded alone (``grader.grading.lanes``): ``$GRADER_LANES``, else
    one per ``threads`` usable cores, at most ``MAX_LANES`` (two: what was measured) and no more than the
    free memory holds at ``LANE_MEMORY_MB`` each; one with the GPU (one submission holds it whole)."""
    if gpu:
        return 1
    try:
        explicit = int(os.environ.get(ENV_LANES) or 0)
    except ValueError:
        explicit = 0
    if explicit > 0:
        return explicit
    lanes = min(MAX_LANES, usable_cores() // max(1, threads))
    free = available_memory_mb()
    if free is not None:
        lanes = min(lanes, free // LANE_MEMORY_MB)
    return max(1, lanes)


def preload(spec: AssignmentSpec, gpu: bool = False) -> None:
    """What every grading process needs, imported once here so that forked workers share it.

    The reference's cached results are read here once; the reference itself (and torch and torchvision,
    which it imports) only when there are none, so that a run after a suite version's first imports torch
    only if a submission asks for a result not there yet (then in the grading process that needs it).
    """
    import grader.grading.engine  # noqa: F401 - pytest, the plugin, the test-author API
    import grader.report.html  # noqa: F401 - jinja2 and the templates
    from grader.grading import refcache
    from grader.grading.reference import load_reference

    if not refcache.preload(spec, gpu):
        load_reference(spec.reference, spec.files)


@dataclass
class _Slot:
    process: Any
    conn: mpc.Connection
    lifeline: int                  # the write end; closing it stops the worker at once
    current: tuple[Job, cf.Future] | None = None
    alive: bool = True
    stopping: bool = False
    cgroups: list[str] = field(default_factory=list)   # its sandbox's, as it last reported them


class LocalExecutor:
    """N forked grading processes on this machine, each with one session for all its jobs.

    A dispatcher thread gives each idle process the next job, so a slow
    submission never holds up the others. A process that dies fails only the
    job it had; the rest go to the processes that are left.
    """

    @staticmethod
    def uses_gpu() -> bool:
        return cuda_usable()

    def __init__(self, context: ExecutorContext) -> None:
        n = max(1, context.workers)
        if n > 1:
            preload(context.spec, context.gpu)
        # else nothing is shared: the one grading process starts its sandbox first and imports torch and the
        # engine while the sandbox's zygote imports its own (executors.process), on two cores at once
        _SPECS[spec_file_of(context.spec)] = (context.spec, context.suite)
        self.gpu = context.gpu
        self.threads = threads_per_worker()
        ctx = mp.get_context("fork")
        settings = WorkerSettings(threads=self.threads, gpu=self.gpu, gpu_lock=ctx.Lock() if self.gpu else None,
                                  lanes=lanes_for_one(self.threads, self.gpu) if n == 1 else 1)
        self._slots: list[_Slot] = []
        # What is alive now is shared by every worker: frozen, the collector in a worker never walks it
        # (pytest collects garbage twice per suite run; walking torch's objects cost 0.25 s a submission)
        # and never writes to it (so the pages stay shared).
        gc.freeze()
        try:
            for i in range(n):
                ours, theirs = ctx.Pipe()
                life_r, life_w = os.pipe()
                inherited = [end for s in self._slots for end in (s.conn, s.lifeline)] + [life_w]
                proc = ctx.Process(target=_worker_main, name=f"grader-worker-{i + 1}", daemon=True,
                                   args=(theirs, life_r, inherited, settings, spec_file_of(context.spec)))
                proc.start()
                theirs.close()
                os.close(life_r)
                self._slots.append(_Slot(proc, ours, life_w))
        finally:
            gc.unfreeze()
        self._queue: deque[tuple[Job, cf.Future]] = deque()
        self._lock = threading.Lock()
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="grader-dispatch", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> cf.Future:
        future: cf.Future = cf.Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("the executor is shut down")
            self._queue.append((job, future))
        self._wake()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closing = True
            if cancel_futures:
                self._cancel_queue()
        self._wake()
        if wait:
            self._join()

    def terminate(self) -> None:
        """Stop now (Ctrl-C): queued jobs are cancelled, running ones abandoned, sessions closed."""
        with self._lock:
            self._closing = True
            self._cancel_queue()
            for slot in self._slots:
                self._cut_lifeline(slot)
        self._wake()
        self._join()

    @staticmethod
    def _cut_lifeline(slot: _Slot) -> None:
        if slot.lifeline >= 0:
            with contextlib.suppress(OSError):
                os.close(slot.lifeline)
            slot.lifeline = -1

    def _join(self) -> None:
        self._thread.join(timeout=120)
        for slot in self._slots:
            slot.process.join(timeout=30)
            if slot.process.is_alive():   # stuck: stop it with its cleanup, then without
                self._cut_lifeline(slot)
                slot.process.join(timeout=15)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=10)
            self._cut_lifeline(slot)
            slot.conn.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _cancel_queue(self) -> None:
        while self._queue:
            self._queue.popleft()[1].cancel()

    # the dispatcher thread ---------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                live = [s for s in self._slots if s.alive]
                if not live:
                    while self._queue:
                        job, future = self._queue.popleft()
                        if future.set_running_or_notify_cancel():
                            future.set_exception(JobError("no grading process is left to grade it"))
                    return
                for slot in live:
                    self._feed(slot)
            waitables: list[Any] = [self._wake_r]
            for slot in live:
                waitables += [slot.process.sentinel, slot.conn]
            ready = mpc.wait(waitables)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            with self._lock:
                for slot in live:
                    if slot.conn in ready:
                        self._receive(slot)
                    if slot.process.sentinel in ready:
                        self._ended(slot)

    def _feed(self, slot: _Slot) -> None:
        while slot.current is None and self._queue:
            job, future = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            slot.current = (job, future)
            try:
                slot.conn.send(job)
            except OSError:
                return   # the process is gone: its sentinel fails this job
        if slot.current is None and self._closing and not self._queue and not slot.stopping:
            slot.stopping = True
            with contextlib.suppress(OSError):
                slot.conn.send(None)

    def _receive(self, slot: _Slot) -> bool:
        """Take one message from the worker; False when its pipe is closed (its sentinel says why)."""
        try:
            kind, payload, slot.cgroups = slot.conn.recv()
        except (EOFError, OSError, ValueError):
            return False
        if kind == "ready" or slot.current is None:
            return True
        job, future = slot.current
        slot.current = None
        if kind == "done":
            future.set_result(payload)
        else:
            future.set_exception(JobError(payload))
        return True

    def _ended(self, slot: _Slot) -> None:
        with contextlib.suppress(OSError, EOFError):
            while slot.conn.poll() and self._receive(slot):
                pass
        slot.alive = False
        slot.process.join(timeout=5)
        code = slot.process.exitcode
        leftover = [Path(p) for p in slot.cgroups if Path(p).name.startswith("grader-") and Path(p).exists()]
        if leftover:   # killed before it could close its sandbox: end what runs there, remove the cgroups
            from grader.grading.cgroups import Cgroups

            Cgroups(paths=leftover).remove()
        if slot.current is not None:
            job, future = slot.current
            slot.current = None
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            future.set_exception(JobError(f"its grading process (pid {slot.process.pid}) ended ({how})"))
