"""Grading a class: resumable, keyed by content, in worker processes that pay start-up once.

The pieces, in the order a run uses them:

- ``OutputLock``: one run per output folder (``DIR/.grader.lock``, ``flock``);
- ``grader.intake.ingest``: folders, zips and LMS bulk downloads become one folder per student;
- content keys (``grader.classrun.keys``): a student whose result carries the same key
  (same files, suite, reference and grader, and the GPU given or not) is kept, not regraded;
- ``Job``: plain data naming one submission to grade; ``grade_job(job)`` grades it
  in whatever process runs it, writes ``results.json``, ``grading.json`` and the
  report into ``DIR/<student>/`` (atomically) and returns a small summary;
- an ``Executor`` runs jobs: ``submit(job) -> Future``. The default, ``local``,
  imports torch, the engine and the reference here once, then forks N grading
  processes (before any tensor operation, and never after CUDA starts) that each
  keep one ``GradingSession``, so one sandbox zygote, for all their submissions;
- the gradebook (``grader.classrun.gradebook``) records the run and every student's score.

Another executor (a cluster) is chosen with ``grader run --executor NAME``: a
factory ``create_executor(context) -> Executor`` in ``grader/classrun/executors/NAME_executor.py``,
under the ``grader.executors`` entry-point group, or given to ``register_executor``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import fcntl
import gc
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import grader
from grader import results as results_io
from grader.classrun.gradebook import Gradebook, current_user, now_utc
from grader.intake.ingest import Incoming, IngestError, ingest
from grader.intake.submission import read_submission
from grader.intake.notebook.take import rules_for
from grader.classrun.keys import submission_key, suite_key
from grader.classrun.progress import Progress, summary_table
from grader.results import LmsIdentity, Problem, SubmissionResult
from grader.spec import AssignmentSpec, load_spec

LOCK_FILE = ".grader.lock"
STAGING_PREFIX = ".ingest-"   # DIR/.ingest-<pid>-<random>: one run's unpacked zips, removed when it ends


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- one run per output folder ------------------------------------------------------

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


# --- jobs: plain data in, plain data out ------------------------------------------

@dataclass(frozen=True)
class Job:
    """One submission to grade. Plain data: any executor can ship it to any process."""

    student: str
    submission: str          # the folder holding the student's files
    out: str                 # the class's output folder; the result goes to out/<student>
    key: str                 # content key of submission + suite + whether the GPU is given (grader.classrun.keys)
    assignment: str          # the spec's id
    spec_file: str           # its assignment.toml, so a process that has not loaded it can
    suite: str               # suite key the run was planned with; a worker with another copy refuses
    problems: tuple[dict[str, Any], ...] = ()   # found while unpacking (grader.intake.ingest), for the report
    lms: dict[str, Any] | None = None           # the LMS identity read from the download's name (grader.intake.ingest)
    other_files: tuple[str, ...] = ()           # files of the submission that are not the assignment's, for the summary


class JobError(Exception):
    """A job that could not grade its submission (not the student's fault); the message says why."""


@dataclass
class WorkerSettings:
    threads: int = 1          # torch threads in the sandbox (the grading process itself uses one)
    gpu: bool = False         # whether sessions give the sandbox the GPU
    gpu_lock: Any = None      # held while a GPU session grades: one submission on the GPU at a time


_SETTINGS = WorkerSettings()
_SPECS: dict[str, tuple[AssignmentSpec, str]] = {}      # spec file -> (spec, suite key); safe to inherit
_SESSIONS: dict[str, Any] = {}                          # spec file -> GradingSession of THIS process
_SESSIONS_PID: int | None = None
_OUTPUT_LOCK = threading.RLock()   # held while a result is written; a worker that is stopping takes it for good


def configure_worker(settings: WorkerSettings) -> None:
    """Called once in a grading process before its first job (the local executor does it after fork)."""
    global _SETTINGS
    _SETTINGS = settings
    import torch

    # The grading process only runs the reference's probes (memoised) and waits on its sandbox, so one
    # thread is enough; more oversubscribes the cores its sandbox needs, and an OpenMP pool inherited
    # through fork from a parent that already ran tensor code deadlocks on first use.
    torch.set_num_threads(1)


def spec_for(spec_file: str) -> tuple[AssignmentSpec, str]:
    if spec_file not in _SPECS:
        spec = load_spec(Path(spec_file))
        _SPECS[spec_file] = (spec, suite_key(spec))
    return _SPECS[spec_file]


def spec_file_of(spec: AssignmentSpec) -> str:
    return str(spec.root / "assignment.toml")


def _own_sessions() -> dict[str, Any]:
    global _SESSIONS, _SESSIONS_PID
    if _SESSIONS_PID != os.getpid():
        # a forked copy of another process's sessions is that process's to close, never ours
        _SESSIONS, _SESSIONS_PID = {}, os.getpid()
        from multiprocessing import util

        util.Finalize(None, close_sessions, exitpriority=100)   # at exit of this process, however it is run
    return _SESSIONS


def session_for(spec_file: str) -> Any:
    sessions = _own_sessions()
    if spec_file not in sessions:
        from grader.grading.engine import GradingSession

        spec, _ = spec_for(spec_file)
        sessions[spec_file] = GradingSession(spec, threads=_SETTINGS.threads, gpu=_SETTINGS.gpu)
    return sessions[spec_file]


def close_sessions(hard: bool = False) -> None:
    """Close this process's sessions: sandbox zygote ended, its cgroups removed."""
    if _SESSIONS_PID != os.getpid():
        return
    while _SESSIONS:
        _, session = _SESSIONS.popitem()
        if hard:   # the zygote may be mid-request: end it first so close() does not wait on it
            proc = getattr(getattr(session, "_sandbox", None), "proc", None)
            if proc is not None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            session.close()


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sandbox_peak_mb(session: Any) -> float | None:
    """The largest peak resident size among the sandbox's processes (its zygote, mostly)."""
    proc = getattr(getattr(session, "_sandbox", None), "proc", None)
    if proc is None:
        return None
    from grader.worker.zygote import descendants

    peaks = [p for p in (_vm_hwm_mb(pid) for pid in [proc.pid, *descendants(proc.pid)]) if p is not None]
    return max(peaks) if peaks else None


def grade_job(job: Job) -> dict[str, Any]:
    """Grade one submission into ``job.out/job.student``; return a small summary (plain data)."""
    started = time.monotonic()
    spec, suite = spec_for(job.spec_file)
    if spec.id != job.assignment or suite != job.suite:
        raise JobError(f"this process's copy of {job.assignment} (its suite, reference or grader) differs from "
                       "the one the run was planned with")
    try:
        session = session_for(job.spec_file)
        gpu_turn = _SETTINGS.gpu_lock if session.sandbox_config.gpu and _SETTINGS.gpu_lock else contextlib.nullcontext()
        with gpu_turn:
            result = session.grade(Path(job.submission), job.student)
    except Exception as e:  # noqa: BLE001 - sent back as text: exceptions of any kind must cross processes
        raise JobError(f"{type(e).__name__}: {e}") from None
    result.key = job.key
    result.problems = [Problem.model_validate(p) for p in job.problems] + list(result.problems)
    result.lms = LmsIdentity.model_validate(job.lms) if job.lms else None
    with _OUTPUT_LOCK:
        report_error = write_outputs(result, Path(job.out) / job.student)
    return {
        **outcome_fields(result),
        "job_s": round(time.monotonic() - started, 3),
        "worker_pid": os.getpid(),
        "worker_peak_mb": _vm_hwm_mb(os.getpid()),
        "sandbox_peak_mb": _sandbox_peak_mb(session),
        "report_error": report_error,
    }


def write_outputs(result: SubmissionResult, folder: Path) -> str:
    """Save the result (atomically), then its HTML report; returns why the report failed, or ""."""
    results_io.save(result, folder)
    try:
        from grader.report.html import write_student_report

        write_student_report(result, folder)
    except Exception as e:  # noqa: BLE001 - the result stands; the next run rebuilds a missing report
        return f"report not written: {type(e).__name__}: {e}"
    return ""


def outcome_fields(result: SubmissionResult) -> dict[str, Any]:
    return {
        "student": result.student, "key": result.key, "score": result.score, "max_score": result.max_score,
        "tests": len(result.tests), "failed_tests": sum(t.outcome.value in ("failed", "error") for t in result.tests),
        "problems": len(result.problems), "note": result.problems[0].message if result.problems else "",
        "execution_time": result.execution_time, "checks_s": round(sum(t.duration_s for t in result.tests), 3),
        "graded_at": result.graded_at,
    }


# --- executors ------------------------------------------------------------------------

@dataclass(frozen=True)
class ExecutorContext:
    """What an executor is told when a run starts."""

    spec: AssignmentSpec
    suite: str
    workers: int      # submissions to grade at once (already capped by the number of jobs)
    out: Path
    gpu: bool = False  # whether submissions get the GPU (decided before planning: it is part of each key)


class Executor(Protocol):
    """Runs ``grade_job`` on jobs somewhere. ``concurrent.futures`` executors that run ``grade_job``
    (e.g. ``distributed.Client.get_executor()`` wrapped to submit ``grade_job``) fit."""

    def submit(self, job: Job) -> cf.Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


ExecutorFactory = Callable[[ExecutorContext], Executor]


class ExecutorUnavailable(Exception):
    """No executor by that name, or it cannot be loaded here (the message says why)."""


EXECUTORS: dict[str, ExecutorFactory] = {}
ENTRY_POINT_GROUP = "grader.executors"


def register_executor(name: str, factory: ExecutorFactory) -> None:
    EXECUTORS[name] = factory


def _found_executors() -> dict[str, Callable[[], ExecutorFactory]]:
    """Executors found without importing them: entry points in ``grader.executors`` (the group), and
    modules ``grader/classrun/executors/<name>_executor.py`` that define ``create_executor(context)``."""
    import importlib
    import pkgutil
    from importlib.metadata import entry_points

    found: dict[str, Callable[[], ExecutorFactory]] = {
        ep.name: ep.load for ep in entry_points(group=ENTRY_POINT_GROUP)}
    folder = Path(grader.__file__).parent / "classrun" / "executors"
    for info in pkgutil.iter_modules([str(folder)]) if folder.is_dir() else []:
        if info.name.endswith("_executor"):
            module = f"grader.classrun.executors.{info.name}"
            found.setdefault(info.name[: -len("_executor")], lambda module=module: _factory_in(module))
    return found


def _factory_in(module: str) -> ExecutorFactory:
    import importlib

    try:
        return importlib.import_module(module).create_executor
    except (ImportError, AttributeError) as e:
        raise ExecutorUnavailable(f"{module} cannot be used as an executor: {e}") from None


def executor_names() -> list[str]:
    return sorted(set(EXECUTORS) | set(_found_executors()))


def executor_factory(name: str) -> ExecutorFactory:
    """The factory registered or found under ``name`` (loaded once); ``ExecutorUnavailable`` if none."""
    if name not in EXECUTORS:
        load = _found_executors().get(name)
        if load is None:
            raise ExecutorUnavailable(f"unknown executor {name!r}; known: {', '.join(executor_names())}")
        register_executor(name, load())
    return EXECUTORS[name]


def make_executor(name: str, context: ExecutorContext) -> Executor:
    return executor_factory(name)(context)


def run_uses_gpu(executor: str) -> bool:
    """Whether a run on ``executor`` gives submissions the GPU, as its factory's optional
    ``uses_gpu()`` says (the local executor: when CUDA is usable here); no when it has none."""
    uses_gpu = getattr(executor_factory(executor), "uses_gpu", None)
    return bool(uses_gpu()) if callable(uses_gpu) else False


def cuda_usable() -> bool:
    """Whether submissions get the GPU, decided without initialising CUDA in this process.

    ``torch.cuda.is_available()`` would start the CUDA driver here, and CUDA cannot
    be used in a process forked after that. So: no when ``CUDA_VISIBLE_DEVICES`` is
    empty or -1, when torch is a CPU build, or when there are no ``/dev/nvidia*``
    devices; otherwise a short-lived forked child asks torch and exits.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    import torch

    if torch.version.cuda is None or not any(Path("/dev").glob("nvidia[0-9]*")):
        return False
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child only answers through its exit status
        code = 1
        try:
            code = 0 if torch.cuda.is_available() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def preload(spec: AssignmentSpec) -> None:
    """What every grading process needs, imported once here so that forked workers share it."""
    import torch  # noqa: F401

    import grader.grading.engine  # noqa: F401 - pytest, the plugin, the probe library
    import grader.report.html  # noqa: F401 - jinja2 and the templates
    from grader.grading.reference import load_reference

    load_reference(spec.reference, spec.files)


PR_SET_CHILD_SUBREAPER = 36


def _sandbox_cgroups_of(pid: int) -> set[str]:
    """The sandbox cgroups (``grader-*``, made by ``grader.grading.sandbox.Cgroups``) that ``pid`` is in."""
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
    from grader.grading.sandbox import Cgroups
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


def _sandbox_cgroups() -> list[str]:
    """The cgroups of this process's sandboxes, so the parent can remove them if this process is killed."""
    paths = []
    for session in _SESSIONS.values() if _SESSIONS_PID == os.getpid() else ():
        cgroups = getattr(getattr(session, "_sandbox", None), "cgroups", None)
        paths += [str(p) for p in getattr(cgroups, "paths", None) or []]
    return paths


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
    configure_worker(settings)
    try:
        try:
            session_for(spec_file).sandbox   # start the zygote now; a failure shows in the first job
        except Exception:  # noqa: BLE001
            pass
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
        preload(context.spec)
        _SPECS[spec_file_of(context.spec)] = (context.spec, context.suite)
        n = max(1, context.workers)
        self.gpu = context.gpu
        self.threads = max(1, usable_cores() // n)
        ctx = mp.get_context("fork")
        settings = WorkerSettings(threads=self.threads, gpu=self.gpu, gpu_lock=ctx.Lock() if self.gpu else None)
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
            from grader.grading.sandbox import Cgroups

            Cgroups(paths=leftover).remove()
        if slot.current is not None:
            job, future = slot.current
            slot.current = None
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            future.set_exception(JobError(f"its grading process (pid {slot.process.pid}) ended ({how})"))


register_executor("local", LocalExecutor)


# --- the run ----------------------------------------------------------------------------

@dataclass
class StudentOutcome:
    student: str
    status: str                       # graded, kept, failed (not graded)
    key: str = ""
    score: float | None = None
    max_score: float | None = None
    tests: int = 0
    failed_tests: int = 0
    problems: int = 0
    note: str = ""                    # the first problem, for the table
    error: str = ""                   # why it was not graded
    execution_time: float | None = None
    checks_s: float | None = None     # the tests' own time (pytest calls, student and reference probes)
    job_s: float | None = None        # the grading process's time for the whole job
    graded_at: str | None = None
    worker_pid: int | None = None
    worker_peak_mb: float | None = None
    sandbox_peak_mb: float | None = None
    report_error: str = ""
    empty: bool = False               # the submission holds no file at all
    other_files: list[str] = field(default_factory=list)   # files that are not the assignment's

    @classmethod
    def from_fields(cls, status: str, fields: dict[str, Any]) -> "StudentOutcome":
        known = cls.__dataclass_fields__
        return cls(status=status, **{k: v for k, v in fields.items() if k in known and k != "status"})


@dataclass
class Summary:
    assignment: str
    out: Path
    suite_key: str
    executor: str
    jobs: int = 0
    run_id: int | None = None
    wall_s: float = 0.0
    students: list[StudentOutcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def with_status(self, status: str) -> list[StudentOutcome]:
        return [o for o in self.students if o.status == status]

    @property
    def graded(self) -> list[StudentOutcome]:
        return self.with_status("graded")

    @property
    def kept(self) -> list[StudentOutcome]:
        return self.with_status("kept")

    @property
    def failed(self) -> list[StudentOutcome]:
        return self.with_status("failed")

    @property
    def exit_code(self) -> int:
        """0 when every submission has a result (whatever its score), 1 when some could not be graded."""
        return 1 if self.failed else 0

    def totals_line(self) -> str:
        from grader.classrun.progress import clock

        text = (f"graded {len(self.graded)}, kept {len(self.kept)} unchanged, not graded {len(self.failed)} "
                f"of {len(self.students)} in {clock(self.wall_s)} ({self.jobs} worker(s)); results in {self.out}")
        empty = sorted(o.student for o in self.students if o.empty)
        if empty:
            text += f"; empty: {', '.join(empty)}"
        others = sorted((o.student, o.other_files) for o in self.students if o.other_files)
        if others:
            text += "; files that are not the assignment's: " + "; ".join(
                f"{student} ({', '.join(files[:3])}{f' +{len(files) - 3} more' if len(files) > 3 else ''})"
                for student, files in others)
        if self.failed:
            text += "; run the same command again to grade the rest"
        return text

    def lines(self) -> list[str]:
        return summary_table(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment, "out": str(self.out), "suite_key": self.suite_key,
            "grader_version": grader.__version__, "executor": self.executor, "jobs": self.jobs,
            "run_id": self.run_id, "wall_s": round(self.wall_s, 3), "graded": len(self.graded),
            "kept": len(self.kept), "failed": len(self.failed), "warnings": self.warnings,
            "students": [asdict(o) for o in sorted(self.students, key=lambda o: o.student)],
        }


def _content_key(files: dict[str, bytes], problems: list[Problem], suite: str, gpu: bool = False) -> str:
    if problems:   # what was left out of a zip is part of what decides the result
        files = {**files, "\0ingest": json.dumps([p.model_dump(mode="json") for p in problems]).encode()}
    # Whether the GPU checks ran decides the result too: a run with the GPU regrades what one without it kept.
    return submission_key(files, suite + ("\0gpu" if gpu else ""))


def _load(folder: Path) -> SubmissionResult | None:
    try:
        return results_io.load(folder)
    except Exception:  # noqa: BLE001 - missing or unreadable: regrade
        return None


def _existing_key(folder: Path) -> str | None:   # for executors that plan their own runs
    result = _load(folder)
    return result.key if result else None


def _reusable(folder: Path, key: str) -> SubmissionResult | None:
    """The existing result when its key matches, with what a kill between two writes can leave mended."""
    result = _load(folder)
    if result is None or result.key != key:
        return None
    try:
        current = json.loads((folder / results_io.RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    expected = result.to_gradescope()
    if current != json.loads(json.dumps(expected)):
        results_io.write_atomic(folder / results_io.RESULTS_FILE, json.dumps(expected, indent=1))
    from grader.report import REPORT_FILE
    from grader.report.html import write_student_report

    if not (folder / REPORT_FILE).exists():
        write_student_report(result, folder)
    return result


def nothing_to_grade(spec: AssignmentSpec, student: str, problems: list[Problem], key: str) -> SubmissionResult:
    """The result of a submission that holds none of the assignment's files: 0 points, said plainly, without
    starting a sandbox or running the suite (every test would only find the files missing)."""
    return SubmissionResult(
        student=student, assignment=spec.id, score=0.0, max_score=spec.total_points, execution_time=0.0, tests=[],
        problems=problems, feedback=spec.feedback,
        isolation="no code was run: the submission holds none of the assignment's files",
        grader_version=grader.__version__, key=key, graded_at=now_utc())


def read_as_graded(folder: Path, spec: AssignmentSpec):
    """The submission's files as the engine reads them (grader.grading.engine.GradingSession.grade), for the content
    key and for deciding that there is nothing to grade."""
    return read_submission(folder, spec.files, rules_for(spec))


def has_gradable_file(files: dict[str, bytes], spec: AssignmentSpec) -> bool:
    return any(name in files for name in spec.files)


def other_files(files: dict[str, bytes], spec: AssignmentSpec) -> list[str]:
    """The submission's files that are not the assignment's own, for the run's summary."""
    return sorted(name for name in files if name not in spec.files)


def _remove_abandoned_staging(out: Path) -> None:
    """Unpacked zips left by runs that were killed (their process is gone); called under the lock."""
    for folder in out.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name[len(STAGING_PREFIX):].split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def plan(spec: AssignmentSpec, incoming: list[Incoming], out: Path, suite: str,
         force: bool, gpu: bool = False) -> tuple[list[Job], list[StudentOutcome]]:
    """Jobs for what must be graded; outcomes for results kept as they are and for submissions with nothing
    to grade (their result is written here, at once)."""
    todo, kept = [], []
    for item in sorted(incoming, key=lambda i: i.student):
        for stale in (out / item.student).glob(".*.tmp"):   # a write cut short (the run holds the lock)
            stale.unlink(missing_ok=True)
        intake = read_as_graded(item.folder, spec)
        key = _content_key(intake.files, item.problems, suite, gpu)
        extra = {"empty": not intake.files, "other_files": other_files(intake.files, spec)}
        existing = None if force else _reusable(out / item.student, key)
        if existing is not None and existing.lms != item.lms:   # the same files, downloaded from an LMS this time
            existing.lms = item.lms
            results_io.save(existing, out / item.student)
        if existing is not None:
            kept.append(StudentOutcome.from_fields("kept", {**outcome_fields(existing), **extra}))
        elif not has_gradable_file(intake.files, spec):
            result = nothing_to_grade(spec, item.student, list(item.problems) + intake.problems, key)
            result.lms, result.notebook = item.lms, intake.notebook
            report_error = write_outputs(result, out / item.student)
            kept.append(StudentOutcome.from_fields("graded", {**outcome_fields(result), **extra,
                                                              "report_error": report_error}))
        else:
            todo.append(Job(student=item.student, submission=str(item.folder.absolute()), out=str(out), key=key,
                            assignment=spec.id, spec_file=spec_file_of(spec), suite=suite,
                            problems=tuple(p.model_dump(mode="json") for p in item.problems),
                            lms=item.lms.model_dump(mode="json") if item.lms else None,
                            other_files=tuple(extra["other_files"])))
    return todo, kept


def _record(book: Gradebook, run_id: int, o: StudentOutcome) -> None:
    book.record(run_id, o.student, o.status, o.key, o.score, o.max_score, o.problems, o.graded_at,
                o.error or o.note)


def run_jobs(executor: Executor, todo: list[Job], window: int,
             done: Callable[[StudentOutcome], None], tick: Callable[[], None] = lambda: None,
             grading: Callable[[list[str]], None] = lambda students: None) -> None:
    """Submit jobs (at most ``window`` at a time) and report each outcome as it finishes, and who is
    being graded now (the jobs whose future says it is running).

    On any exception (Ctrl-C included) the executor is stopped at once and the
    exception goes on; results already written stay.
    """
    pending = deque(todo)
    running: dict[cf.Future, Job] = {}
    try:
        while pending or running:
            while pending and len(running) < window:
                job = pending.popleft()
                running[executor.submit(job)] = job
            finished, _ = cf.wait(running, timeout=0.25, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    outcome = StudentOutcome.from_fields("graded", {**future.result(),
                                                                    "other_files": list(job.other_files)})
                except Exception as e:  # noqa: BLE001 - one job's failure is that student's, not the run's
                    outcome = StudentOutcome(student=job.student, status="failed", key=job.key, error=str(e) or
                                             type(e).__name__)
                done(outcome)
            grading([job.student for future, job in running.items() if future.running()])
            tick()
    except BaseException:
        stop = getattr(executor, "terminate", None)
        if stop is not None:
            stop()
        else:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def grade_class(spec: AssignmentSpec, sources: list[Path], out: Path, *, jobs: int | None = None,
                force: bool = False, executor: str = "local", id_pattern: str | None = None,
                progress: Progress | None = None, command: str = "") -> Summary:
    """Grade every submission ``sources`` hold into ``out``; see the module's docstring.

    Raises ``OutputBusy`` when another run holds ``out`` and ``grader.intake.ingest.IngestError``
    for arguments that cannot be read as submissions.
    """
    started = time.monotonic()
    out = Path(out).absolute()
    progress = progress or Progress()
    executor_factory(executor)   # an unknown or broken executor stops the run before anything is touched
    created = [p for p in [out, *out.parents] if not p.exists()]   # what a refused run must take away again
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
    try:
        # Arguments that cannot be read as submissions are refused before the lock or the gradebook is made.
        incoming, warnings = ingest([Path(s) for s in sources], staging, id_pattern)
        lock = OutputLock(out)
        lock.__enter__()
    except (IngestError, OutputBusy):
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:   # innermost first; only folders still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        with Gradebook.for_output(out) as book:
            book.mark_abandoned()
            _remove_abandoned_staging(out)
            suite = suite_key(spec)
            _SPECS[spec_file_of(spec)] = (spec, suite)   # what this process (and any it forks) grades with
            gpu = run_uses_gpu(executor)
            todo, ready = plan(spec, incoming, out, suite, force, gpu)
            workers = max(1, min(jobs or usable_cores(), len(todo)))
            summary = Summary(assignment=spec.id, out=out, suite_key=suite, executor=executor, jobs=workers,
                              students=ready, warnings=warnings)
            summary.run_id = run_id = book.start_run(assignment=spec.id, suite_key=suite,
                                                     grader_version=grader.__version__, command=command,
                                                     jobs=workers, executor=executor)
            for o in ready:
                _record(book, run_id, o)

            def done(o: StudentOutcome) -> None:
                summary.students.append(o)
                _record(book, run_id, o)
                progress.finished(o)

            status = "interrupted"
            progress.start(len(todo), len(summary.kept), workers, spec.id, gpu)
            try:
                if todo:
                    context = ExecutorContext(spec=spec, suite=suite, workers=workers, out=out, gpu=gpu)
                    run_jobs(make_executor(executor, context), todo, 2 * workers, done, progress.tick,
                             progress.running)
                status = "finished"
            finally:
                progress.close()
                summary.wall_s = time.monotonic() - started
                book.finish_run(run_id, status, summary.wall_s)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.__exit__(None, None, None)
    return summary
