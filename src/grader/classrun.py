"""Grading many submissions: resumable, keyed by content, in parallel workers.

The parent imports torch and the reference once; with ``jobs > 1`` it forks
worker processes (before any tensor work, never after CUDA starts) that each
keep one sandbox zygote for all the submissions they grade.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grader import results as results_io
from grader.engine import GradingSession
from grader.intake import read_submission
from grader.keys import submission_key, suite_key
from grader.spec import AssignmentSpec


@dataclass
class Summary:
    graded: list[tuple[str, float, float]] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    wall_s: float = 0.0

    def lines(self) -> list[str]:
        out = [f"{sid}: {score:g}/{max_score:g}" for sid, score, max_score in self.graded]
        out += [f"{sid}: unchanged, result kept" for sid in self.reused]
        out += [f"{sid}: NOT graded: {why}" for sid, why in self.failed]
        out.append(f"graded {len(self.graded)}, kept {len(self.reused)}, failed {len(self.failed)} in {self.wall_s:.1f} s")
        return out


def _existing_key(folder: Path) -> str | None:
    try:
        return results_io.load(folder).key
    except Exception:  # noqa: BLE001 - a missing or unreadable result is simply regraded
        return None


def write_outputs(result: results_io.SubmissionResult, folder: Path) -> None:
    from grader.report.html import write_student_report

    results_io.save(result, folder)
    write_student_report(result, folder)


_SESSION: GradingSession | None = None


def _grade_one(spec: AssignmentSpec, sid: str, path: Path, out: Path, key: str) -> tuple[str, float, float]:
    global _SESSION
    if _SESSION is None:
        _SESSION = GradingSession(spec)
    result = _SESSION.grade(path, sid)
    result.key = key
    write_outputs(result, out / sid)
    return sid, result.score, result.max_score


def grade_class(spec: AssignmentSpec, submissions: list[tuple[str, Path]], out: Path, jobs: int = 1,
                force: bool = False, progress: IO[str] | None = None) -> Summary:
    global _SESSION
    started = time.monotonic()
    summary = Summary()
    suite = suite_key(spec)
    todo = []
    for sid, path in submissions:
        key = submission_key(read_submission(path, spec.files).files, suite)
        if not force and _existing_key(out / sid) == key:
            summary.reused.append(sid)
        else:
            todo.append((sid, path, key))
    out.mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(jobs, len(todo)))
    if jobs == 1:
        try:
            for n, (sid, path, key) in enumerate(todo, 1):
                summary.graded.append(_grade_one(spec, sid, path, out, key))
                if progress:
                    print(f"[{n}/{len(todo)}] {sid}", file=progress, flush=True)
        finally:
            if _SESSION is not None:
                _SESSION.close()
                _SESSION = None
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(jobs, maxtasksperchild=None) as pool:
            pending = [pool.apply_async(_grade_one, (spec, sid, path, out, key)) for sid, path, key in todo]
            for n, ((sid, _, _), job) in enumerate(zip(todo, pending), 1):
                try:
                    summary.graded.append(job.get())
                except Exception as e:  # noqa: BLE001 - one broken job must not stop the class
                    summary.failed.append((sid, f"{type(e).__name__}: {e}"))
                if progress:
                    print(f"[{n}/{len(todo)}] {sid}", file=progress, flush=True)
    summary.wall_s = time.monotonic() - started
    return summary
