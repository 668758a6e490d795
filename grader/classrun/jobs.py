"""Jobs: one submission to grade, as plain data, and grading it in whatever process runs it.

In: a ``Job`` (the student, the submission's folder, the output folder, the
content and suite keys, the spec's path). Out: ``results.json``, ``grading.json``
and the report in ``DIR/<student>/`` (written atomically) and a small summary
(plain data) for the run. Each grading process keeps one ``GradingSession``,
so one sandbox zygote, per spec for all its jobs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import results as results_io
from grader.classrun.keys import suite_key
from grader.results import LmsIdentity, Problem, SubmissionResult
from grader.spec import AssignmentSpec, load_spec


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
    lanes: int = 1            # sandboxes per session: a submission graded alone is split over them


_SETTINGS = WorkerSettings()
_SPECS: dict[str, tuple[AssignmentSpec, str]] = {}      # spec file -> (spec, suite key); safe to inherit
_SESSIONS: dict[str, Any] = {}                          # spec file -> GradingSession of THIS process
_SESSIONS_PID: int | None = None
_OUTPUT_LOCK = threading.RLock()   # held while a result is written; a worker that is stopping takes it for good


def configure_worker(settings: WorkerSettings) -> None:
    """Called once in a grading process before its first job (the local executor does it after fork)."""
    global _SETTINGS
    _SETTINGS = settings
    # The grading process only runs the reference's probes (memoised) and waits on its sandbox, so one
    # thread is enough; more oversubscribes the cores its sandbox needs, and an OpenMP pool inherited
    # through fork from a parent that already ran tensor code deadlocks on first use. torch itself is
    # imported here only if the parent had it: a grading that finds the reference's results cached needs none.
    torch = sys.modules.get("torch")
    if torch is not None:
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


def session_for(spec_file: str, sandbox: Any = None, lanes: list[Any] | None = None) -> Any:
    """This process's session for ``spec_file``; ``sandbox`` and ``lanes``: sandboxes started for it already
    (see ``start_sandbox``)."""
    sessions = _own_sessions()
    if spec_file not in sessions:
        from grader.grading.engine import GradingSession

        spec, _ = spec_for(spec_file)
        sessions[spec_file] = GradingSession(spec, threads=_SETTINGS.threads, gpu=_SETTINGS.gpu, sandbox=sandbox,
                                             lanes=lanes)
    else:
        for box in [sandbox, *(lanes or [])]:
            if box is not None:
                box.close()
    return sessions[spec_file]


def start_sandbox(settings: WorkerSettings, spec_file: str) -> Any:
    """Launch the sandbox of this process's session for ``spec_file`` without waiting for it: its zygote
    imports torch while this process imports its own (the sandbox module itself needs neither torch nor the
    engine). None when it cannot start here; the session then starts one itself and says why."""
    try:
        from grader.grading.sandbox import Sandbox, SandboxConfig

        spec, _ = spec_for(spec_file)
        return Sandbox(SandboxConfig.for_spec(spec, threads=settings.threads, gpu=settings.gpu), wait=False)
    except Exception:  # noqa: BLE001 - the session's own start reports the failure in the first job
        return None


def close_sessions(hard: bool = False) -> None:
    """Close this process's sessions: sandbox zygote ended, its cgroups removed."""
    if _SESSIONS_PID != os.getpid():
        return
    while _SESSIONS:
        _, session = _SESSIONS.popitem()
        if hard:   # the zygotes may be mid-request: end them first so close() does not wait on them
            for box in session.sandboxes:
                proc = getattr(box, "proc", None)
                if proc is not None:
                    with contextlib.suppress(OSError):
                        os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            session.close()


def _sandbox_cgroups() -> list[str]:
    """The cgroups of this process's sandboxes, so the parent can remove them if this process is killed."""
    paths = []
    for session in _SESSIONS.values() if _SESSIONS_PID == os.getpid() else ():
        for box in session.sandboxes:
            cgroups = getattr(box, "cgroups", None)
            paths += [str(p) for p in getattr(cgroups, "paths", None) or []]
    return paths


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
