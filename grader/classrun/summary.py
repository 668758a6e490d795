"""A run's summary: one outcome per student and the totals, as a table and as JSON.

In: the outcome of each student (graded, kept or not graded). Out: the table
``grader run`` prints, its totals line, and the ``--json`` object.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grader
from grader.points import percent_text, points_text


def clock(seconds: float | None) -> str:
    """``1:05`` or ``1:02:03``; ``--:--`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def score_text(score: float | None, max_score: float | None) -> str:
    if score is None or max_score is None:
        return "-"
    return f"{points_text(score)}/{points_text(max_score)}"


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


def summary_table(summary: "Summary") -> list[str]:
    """The final table: one row per student, then the totals."""
    rows = [("student", "score", "%", "status", "time", "note")]
    for o in sorted(summary.students, key=lambda o: o.student):
        pct = f"{percent_text(o.score, o.max_score)}%" if o.score is not None and o.max_score else "-"
        status = {"graded": "graded", "kept": "kept", "failed": "NOT graded"}[o.status]
        took = f"{o.execution_time:.1f} s" if o.status == "graded" and o.execution_time is not None else ""
        note = o.error or o.note
        rows.append((o.student, score_text(o.score, o.max_score), pct, status, took, note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3].ljust(widths[3]),
                 r[4].rjust(widths[4]), r[5][:100]]
        out.append("  ".join(cells).rstrip())
    out.append("")
    out.append(summary.totals_line())
    return out
