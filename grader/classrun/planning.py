"""Planning a run: which submissions must be graded and which results stand as they are.

In: the submissions ingested (one folder per student), the output folder and the
suite key. Out: a ``Job`` for each submission to grade, and an outcome for each
result kept (same content key: same files, suite, reference and grader, and the GPU
given or not) or for each submission with none of the assignment's files (its
0-point result is written here, at once).
"""

from __future__ import annotations

import json
from pathlib import Path

import grader
from grader import results as results_io
from grader.classrun.gradebook import now_utc
from grader.classrun.jobs import Job, outcome_fields, spec_file_of, write_outputs
from grader.classrun.keys import submission_key
from grader.classrun.summary import StudentOutcome
from grader.intake.ingest import Incoming
from grader.intake.notebook.take import rules_for
from grader.intake.submission import read_submission
from grader.results import Problem, SubmissionResult
from grader.spec import AssignmentSpec


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
