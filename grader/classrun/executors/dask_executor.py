"""``grader run --executor dask``: grading a class on a Dask distributed cluster.

Each ``jobs.Job`` crosses to a Dask worker as one plain dict: the student id,
the submission's path (or, with ``GRADER_DASK_SHIP=1``, its files as bytes), the
output folder, the content and suite keys and the spec's path. Dask pickles that
dict; nothing built from a submission is pickled or unpickled anywhere, and
student code never runs in a Dask process (those hold the scheduler connection
and its credentials): the task runs ``jobs.grade_job``, whose sandboxed
worker is the only process that imports the student's modules, exactly as a
local run does.

Results: with a shared filesystem (the default) ``grade_job`` writes
``DIR/<student>/`` on the worker, atomically, as the local executor does. With
``GRADER_DASK_SHIP=1`` the worker grades into a private folder and sends the
files back; this process writes them into ``DIR/<student>/``. Either way the
reply reaches ``run.run_jobs`` here, which alone writes the gradebook, once
per job.

Failures: a job whose Dask worker dies (node lost, worker killed) is run again by
the scheduler on another worker, up to ``distributed.scheduler.allowed-failures``
times (default 3), then fails with ``KilledWorker``; an exception in the task is
retried ``GRADER_DASK_RETRIES`` times (default 1). A retried job's future still
finishes once, so the gradebook gets one row for it; its result files are
written atomically and keyed by content, so a retry that rewrites them writes
the same grade.

Environment: ``GRADER_DASK_SCHEDULER`` (``tcp://host:8786`` or a scheduler file;
without it a ``LocalCluster`` of ``--jobs`` single-threaded worker processes is
started), ``GRADER_DASK_GPU=1`` (every job asks for the ``GPU`` resource and its
sandbox gets the GPU; start GPU workers with ``--resources GPU=1``),
``GRADER_DASK_SHIP=1``, ``GRADER_DASK_RETRIES``, and on each worker
``GRADER_DASK_THREADS`` (torch threads per job, default 1). Every node needs the same grader
and the same course folder at the same path: a worker whose suite key differs
refuses the job.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from grader.cli import UsageError

ENV_SCHEDULER = "GRADER_DASK_SCHEDULER"
ENV_GPU = "GRADER_DASK_GPU"
ENV_SHIP = "GRADER_DASK_SHIP"
ENV_RETRIES = "GRADER_DASK_RETRIES"
ENV_THREADS = "GRADER_DASK_THREADS"   # read on each worker: torch threads per job (default 1)
GPU_RESOURCE = "GPU"
NAME = "dask"


class ExecutorError(UsageError):
    """The cluster cannot take this run (one line for the user)."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------- on the Dask worker

_GRADE_LOCK = threading.Lock()   # one GradingSession (one sandbox) per worker process: one job at a time
_CONFIGURED: dict[str, Any] = {}


def _configure(gpu: bool, threads: int) -> None:
    from grader.classrun import jobs

    wanted = (gpu, threads)
    if _CONFIGURED.get("settings") != wanted:
        if _CONFIGURED:
            jobs.close_sessions()   # sessions were made with other settings
        jobs.configure_worker(jobs.WorkerSettings(threads=threads, gpu=gpu))
        _CONFIGURED["settings"] = wanted


def _purge_modules_under(folder: Path) -> None:
    folder = folder.resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(folder):
            del sys.modules[name]


def _forget_stale(job: Any) -> None:
    """A long-lived worker that graded an older copy of this course forgets it (spec, session, suite modules)."""
    from grader.classrun import jobs

    specs = getattr(jobs, "_SPECS", {})
    cached = specs.get(job.spec_file)
    if cached is not None and cached[1] != job.suite:
        specs.pop(job.spec_file, None)
        jobs.close_sessions()
        _purge_modules_under(Path(cached[0].hidden_tests))


def _materialise(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise ValueError(f"refusing a file path from the job: {rel!r}")
        path = folder.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _read_back(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_dask_job(payload: dict[str, Any]) -> dict[str, Any]:
    """The Dask task: grade one job (plain dict in, plain dict out) with ``jobs.grade_job``."""
    from grader.classrun import jobs

    job = jobs.Job(**{f.name: payload[f.name] for f in dataclasses.fields(jobs.Job)})
    job = dataclasses.replace(job, problems=tuple(job.problems))
    where = f"{socket.gethostname()}:{os.getpid()}"
    with _GRADE_LOCK:
        _configure(bool(payload.get("gpu")), int(payload.get("threads") or os.environ.get(ENV_THREADS) or 1))
        if not Path(job.spec_file).is_file():
            raise jobs.JobError(f"worker {where}: no {job.spec_file}; every node needs the course at the same path")
        _forget_stale(job)
        files = payload.get("files")
        if files is None:
            if not Path(job.submission).is_dir():
                raise jobs.JobError(f"worker {where}: {job.submission} is not there; share the submissions with "
                                        f"the workers or set {ENV_SHIP}=1")
            reply = jobs.grade_job(job)
            return {**reply, "dask_worker": where}
        with tempfile.TemporaryDirectory(prefix="grader-dask-") as tmp:
            submission, out = Path(tmp) / "submission", Path(tmp) / "out"
            submission.mkdir()
            _materialise(submission, files)
            local = dataclasses.replace(job, submission=str(submission), out=str(out),
                                        problems=job.problems + tuple(payload.get("left_out") or ()))
            reply = jobs.grade_job(local)
            return {**reply, "dask_worker": where, "files": _read_back(out / job.student)}


# ---------------------------------------------------------------- in the process that runs `grader run`


class DaskExecutor:
    """The class run's executor interface on a Dask cluster: ``submit(job) -> Future``, ``shutdown``, ``terminate``."""

    @staticmethod
    def uses_gpu() -> bool:
        """Whether runs give submissions the GPU (``GRADER_DASK_GPU=1``); part of each result's key."""
        return _flag(ENV_GPU)

    def __init__(self, context: Any, *, address: str | None = None, client: Any = None, gpu: bool | None = None,
                 ship: bool | None = None, retries: int | None = None, task: Any = None) -> None:
        try:
            import distributed
        except ImportError:
            raise ExecutorError("--executor dask needs Dask distributed: pip install 'cnn-grader[cluster]'") from None
        self.context = context
        self.gpu = context.gpu if gpu is None else gpu   # decided once, before planning (uses_gpu)
        self.ship = _flag(ENV_SHIP) if ship is None else ship
        self.retries = int(os.environ.get(ENV_RETRIES, "1")) if retries is None else retries
        self.task = task or run_dask_job
        self._cluster = None
        self._own_client = client is None
        self._futures: dict[Any, cf.Future] = {}
        self.threads: int | None = None   # decided by each worker (GRADER_DASK_THREADS), except on our own LocalCluster
        self._lock = threading.Lock()
        self.client = client
        if client is None:
            address = address or os.environ.get(ENV_SCHEDULER) or None
            try:
                if address and Path(address).is_file():
                    self.client = distributed.Client(scheduler_file=address, timeout="30s")
                elif address:
                    self.client = distributed.Client(address, timeout="30s")
                else:
                    from grader.classrun.executors.local import usable_cores

                    n = 1 if self.gpu else max(1, context.workers)
                    self.threads = max(1, usable_cores() // n)
                    self._cluster = distributed.LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True,
                        dashboard_address=":0", resources={GPU_RESOURCE: 1} if self.gpu else None)
                    self.client = distributed.Client(self._cluster)
            except OSError as e:
                self.close()
                raise ExecutorError(f"cannot reach the Dask scheduler {address}: {e}") from None
        if self.gpu:
            workers = self.client.scheduler_info().get("workers", {})
            if not any((w.get("resources") or {}).get(GPU_RESOURCE) for w in workers.values()):
                self.close()
                raise ExecutorError(f"{ENV_GPU}=1 but no Dask worker offers the {GPU_RESOURCE} resource; start GPU "
                                    f"workers with `dask worker SCHEDULER --nthreads 1 --resources {GPU_RESOURCE}=1`")

    # what crosses to the worker
    def payload(self, job: Any) -> dict[str, Any]:
        payload = {**dataclasses.asdict(job), "gpu": self.gpu, "threads": self.threads}
        payload["problems"] = list(job.problems)
        if self.ship:
            from grader.intake.submission import read_submission

            intake = read_submission(Path(job.submission), self.context.spec.files)
            payload["files"] = intake.files
            # what intake left out here (links, oversized files) is said in the result, as in a local run
            payload["left_out"] = [p.model_dump(mode="json") for p in intake.problems
                                   if p.kind == "bad_input" and "left out" in p.message]
        return payload

    @staticmethod
    def task_key(job: Any) -> str:
        where = hashlib.sha256(f"{job.out}\0{job.key}".encode()).hexdigest()[:20]
        return f"grade-{job.student}-{where}"

    def submit(self, job: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        remote = self.client.submit(self.task, self.payload(job), key=self.task_key(job), retries=self.retries,
                                    resources={GPU_RESOURCE: 1} if self.gpu else None, pure=False)
        with self._lock:
            self._futures[remote] = future
        remote.add_done_callback(lambda f: self._finished(job, f))
        return future

    def _finished(self, job: Any, remote: Any) -> None:
        from grader.classrun.jobs import JobError

        with self._lock:
            future = self._futures.pop(remote, None)
        if future is None or future.done():
            return
        try:
            if remote.status != "finished":
                error = remote.exception()
                raise JobError(_why(error)) from None
            reply = remote.result()
            files = reply.pop("files", None)
            if files is not None:
                self._write_back(job, files)
        except BaseException as e:  # noqa: BLE001 - every outcome reaches the run as the future's
            with contextlib.suppress(cf.InvalidStateError):
                future.set_exception(e if isinstance(e, JobError) else JobError(f"{type(e).__name__}: {e}"))
            return
        with contextlib.suppress(cf.InvalidStateError):
            future.set_result(reply)

    @staticmethod
    def _write_back(job: Any, files: dict[str, bytes]) -> None:
        from grader.results import FULL_RESULTS_FILE, RESULTS_FILE

        folder = Path(job.out) / job.student
        folder.mkdir(parents=True, exist_ok=True)
        # the full result last: a run killed half-way sees no result with this key and regrades
        for rel in sorted(files, key=lambda r: (r == FULL_RESULTS_FILE, r == RESULTS_FILE, r)):
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
                raise ValueError(f"the worker sent a file outside the student's folder: {rel!r}")
            target = folder.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(files[rel])
            os.replace(tmp, target)

    def _cancel_all(self) -> None:
        from grader.classrun.jobs import JobError

        with self._lock:
            pending = list(self._futures.items())
            self._futures.clear()
        if pending and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.cancel([remote for remote, _ in pending])
        for _, future in pending:
            with contextlib.suppress(cf.InvalidStateError):
                future.set_exception(JobError("cancelled"))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self._cancel_all()
        elif wait:
            cf.wait(list(self._futures.values()))
        self.close()

    def terminate(self) -> None:
        self._cancel_all()
        self.close()

    def close(self) -> None:
        if self._own_client and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None


def _why(error: BaseException | None) -> str:
    if error is None:
        return "cancelled"
    if type(error).__name__ == "KilledWorker":
        return ("the Dask worker grading it died on every attempt (distributed.scheduler.allowed-failures); "
                "see the workers' logs")
    if type(error).__name__ == "JobError":
        return str(error)
    return f"{type(error).__name__}: {error}"


def register() -> None:
    from grader.classrun.executors.registry import register_executor

    register_executor(NAME, DaskExecutor)
