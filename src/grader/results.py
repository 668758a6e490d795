"""The one results model every renderer reads (JSON, HTML, CSV, Gradescope)."""

from __future__ import annotations

import json
import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

CATEGORIES = ("api", "shape", "params", "skip", "structure", "training", "device", "bonus")
Category = Literal["api", "shape", "params", "skip", "structure", "training", "device", "bonus"]
Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]


class Outcome(str, Enum):
    passed = "passed"
    failed = "failed"      # the submission's behaviour is wrong
    error = "error"        # the submission could not be exercised (import error, crash, timeout)
    skipped = "skipped"    # the check cannot run on this machine (e.g. no CUDA); always with a reason


class Flag(BaseModel):
    """Something an instructor should look at: a limit hit or an action the sandbox refused."""

    kind: Literal["timeout", "memory", "output", "crash", "refused", "import", "internal"]
    detail: str
    test: str | None = None


class TestResult(BaseModel):
    name: str
    nodeid: str
    target: str
    category: Category
    score: float
    max_score: float
    outcome: Outcome
    message: str = ""
    expected: str | None = None
    found: str | None = None
    hint: str | None = None
    # The root cause this failure was diagnosed as (see grader.testing.Mistake.cause); None when not named.
    cause: str | None = None
    visibility: Visibility = "visible"
    duration_s: float = 0.0
    stdout: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def status(self) -> Literal["passed", "failed"]:
        return "passed" if self.outcome is Outcome.passed else "failed"

    def feedback(self) -> str:
        """The student-facing text: what failed, what was expected and found, and the likely cause."""
        lines = [self.message] if self.message else []
        if self.expected is not None:
            lines.append(f"Expected: {self.expected}")
        if self.found is not None:
            lines.append(f"Found: {self.found}")
        if self.hint:
            lines.append(f"Likely cause: {self.hint}")
        if self.stdout:
            lines.append(f"Your code printed:\n{self.stdout}")
        return "\n".join(lines)


class Problem(BaseModel):
    """A part of the submission that could not be graded, and why."""

    file: str | None = None
    kind: Literal["missing", "import", "timeout", "memory", "crash", "bad_input", "internal"]
    message: str
    detail: str = ""


class SubmissionResult(BaseModel):
    student: str
    assignment: str
    score: float
    max_score: float
    execution_time: float
    tests: list[TestResult]
    problems: list[Problem] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    isolation: str
    grader_version: str
    key: str = ""
    graded_at: str = ""
    artifacts: dict[str, Any] = Field(default_factory=dict)

    def by_category(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, tuple[float, float]] = {}
        for t in self.tests:
            got, out_of = totals.get(t.category, (0.0, 0.0))
            totals[t.category] = (got + t.score, out_of + t.max_score)
        return totals

    def by_target(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, tuple[float, float]] = {}
        for t in self.tests:
            got, out_of = totals.get(t.target, (0.0, 0.0))
            totals[t.target] = (got + t.score, out_of + t.max_score)
        return totals

    def to_gradescope(self) -> dict[str, Any]:
        """Gradescope's results.json schema."""
        return {
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "execution_time": round(self.execution_time, 3),
            "output": self.summary_text(),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [
                {
                    "name": t.name,
                    "score": round(t.score, 4),
                    "max_score": round(t.max_score, 4),
                    "status": t.status,
                    "output": t.feedback(),
                    "visibility": t.visibility,
                    "tags": [t.target, t.category],
                }
                for t in self.tests
            ],
        }

    def summary_text(self) -> str:
        lines = [f"{self.score:g} / {self.max_score:g} points (isolation: {self.isolation})"]
        lines += [f"Could not grade {p.file or 'submission'}: {p.message}" for p in self.problems]
        return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that a reader sees the old content or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


RESULTS_FILE = "results.json"      # Gradescope's schema
FULL_RESULTS_FILE = "grading.json"  # the full model, which the reports render from


def save(result: SubmissionResult, folder: Path) -> None:
    write_atomic(folder / FULL_RESULTS_FILE, result.model_dump_json(indent=1))
    write_atomic(folder / RESULTS_FILE, json.dumps(result.to_gradescope(), indent=1))


def load(folder: Path) -> SubmissionResult:
    return SubmissionResult.model_validate_json((folder / FULL_RESULTS_FILE).read_text(encoding="utf-8"))
