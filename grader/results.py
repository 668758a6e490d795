"""The one results model every renderer reads (JSON, HTML, CSV, Gradescope), and what of it students see.

The course's feedback policy says what of a result students are shown.
``grading.json`` is the instructor's full record and is never given to students;
everything students see (``results.json``, the HTML report) is rendered from
``for_student(result)``:

- ``hints`` (the default): what is wrong and where, never the fix;
- ``full``: the fix as well, when the suite wrote one (``Mistake(fix=...)``);
- ``score``: the points per class and nothing else (no test names, messages,
  hints, printed output or artifacts).
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from grader.intake.notebook.model import NotebookReport
from grader.points import points_text, round_points

CATEGORIES = ("api", "shape", "params", "skip", "structure", "training", "device", "bonus")
CATEGORY_LABELS = {
    "api": "API and signatures",
    "shape": "Output shapes",
    "params": "Parameter counts",
    "skip": "Skip connections",
    "structure": "Structure",
    "training": "Training",
    "device": "Device handling",
    "bonus": "Bonus",
}
Category = Literal["api", "shape", "params", "skip", "structure", "training", "device", "bonus"]
Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]
# What students are shown: "hints" says what is wrong and where; "full" may also show the fix;
# "score" shows the points per class and nothing else.
FeedbackPolicy = Literal["hints", "full", "score"]


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
    # How to correct it, possibly in code: shown only under the "full" feedback policy.
    fix: str | None = None
    # The key of the entry in SubmissionResult.mistakes this failure belongs to.
    mistake: str | None = None
    # Said beside the verdict, whatever it is: a stand-in judged in place of a failed dependency, lazy layers
    # materialised before measuring.
    notes: list[str] = Field(default_factory=list)
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
        if self.fix:
            lines.append(f"How to fix it: {self.fix}")
        lines += [f"Note: {note}" for note in self.notes]
        if self.stdout:
            lines.append(f"Your code printed:\n{self.stdout}")
        return "\n".join(lines)


class Problem(BaseModel):
    """A part of the submission that could not be graded, and why."""

    file: str | None = None
    kind: Literal["missing", "import", "timeout", "memory", "crash", "bad_input", "internal"]
    message: str
    detail: str = ""


MistakeKind = Literal["behaviour", "not_implemented", "import", "missing", "limit", "error"]


class MistakeEntry(BaseModel):
    """One root cause found in a submission, charged once, with every test it made fail.

    ``kind``: ``behaviour`` (the code runs but computes the wrong thing), ``not_implemented``
    (still the skeleton's stub), ``import`` (a file that does not import), ``missing``
    (a file or a class that is not there), ``limit`` (a timeout, the memory limit or a
    crash), ``error`` (an exception or a wrong return type).
    """

    key: str
    kind: MistakeKind
    target: str
    file: str | None = None
    line: int | None = None
    layer: str | None = None
    summary: str
    hint: str | None = None
    fix: str | None = None
    # True when the hidden suite named the cause; False when failures were grouped by their message.
    named: bool = False
    tests: list[str] = Field(default_factory=list)
    points_lost: float = 0.0

    def where(self) -> str:
        """The place in the submission: file, line, class and layer as far as known."""
        place = self.file or ""
        if self.line:
            place += f", line {self.line}"
        if self.target and self.kind != "import":
            place += f" ({self.target}{', ' + self.layer if self.layer else ''})" if place else self.target
        return place


class LmsIdentity(BaseModel):
    """Who the submission belongs to in the LMS it was downloaded from, read from its bulk-download name
    (grader.intake.ingest.lms_identity), so grades can be imported back."""

    system: Literal["moodle", "canvas"]
    ids: dict[str, str]        # moodle: participant; canvas: user_id, attachment_id
    name: str = ""             # the name as the LMS wrote it ("Dave Smith", "smithdave")
    late: bool = False         # Canvas marks late submissions in the name


class SubmissionResult(BaseModel):
    student: str
    assignment: str
    score: float
    max_score: float
    execution_time: float
    tests: list[TestResult]
    problems: list[Problem] = Field(default_factory=list)
    # The submission's mistakes, each once, in the order a student should fix them.
    mistakes: list[MistakeEntry] = Field(default_factory=list)
    feedback: FeedbackPolicy = "hints"
    flags: list[Flag] = Field(default_factory=list)
    isolation: str
    grader_version: str
    key: str = ""
    graded_at: str = ""
    artifacts: dict[str, Any] = Field(default_factory=dict)
    notebook: NotebookReport | None = None   # which notebook cells were taken and which left out
    lms: LmsIdentity | None = None

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
        """Gradescope's results.json schema, showing what the feedback policy lets students see; points
        rounded as everywhere else (grader.points)."""
        shown = for_student(self)
        return {
            "score": round_points(self.score),
            "max_score": round_points(self.max_score),
            "execution_time": round(self.execution_time, 3),
            "output": shown.summary_text(),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": gradescope_tests(shown),
        }

    def summary_text(self) -> str:
        """What the student reads first (results.json's top-level ``output``): the score, the points of each
        class or function, and what could not be graded. How the sandbox was isolated is for the instructor
        (``isolation`` in grading.json, the class report)."""
        regular = [t for t in self.tests if t.category != "bonus"]
        bonus = [t for t in self.tests if t.category == "bonus"]
        head = f"Score: {points_text(self.score)} / {points_text(self.max_score)} points"
        if bonus:
            got, out_of = sum(t.score for t in bonus), sum(t.max_score for t in bonus)
            head += f", including {points_text(got)} of {points_text(out_of)} extra-credit points"
        lines = [head + "."]
        parts: dict[str, list[float]] = {}   # target -> [points, of, extra-credit points, of]
        for t in self.tests:
            part = parts.setdefault(t.target, [0.0, 0.0, 0.0, 0.0])
            at = 2 if t.category == "bonus" else 0
            part[at] += t.score
            part[at + 1] += t.max_score
        if parts:
            lines += ["", "Points by class and function:"]
            for target, (got, out_of, extra, extra_of) in parts.items():
                shown = [f"{points_text(got)} / {points_text(out_of)}"] if out_of else []
                if extra_of:
                    shown.append(f"{points_text(extra)} / {points_text(extra_of)} extra credit")
                lines.append(f"- {target}: {', '.join(shown)}")
        if self.problems:
            lines += ["", "Could not be graded:"]
            lines += [f"- {p.message}" for p in self.problems]
        if self.notebook is not None:
            lines += ["", self.notebook.summary()]
        if any(t.score < t.max_score for t in regular):
            lines += ["", "Each test below says what it checked and, where points were lost, what was expected "
                      "and what your code did."]
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


# --------------------------------------------------------------------------- what students are shown

def for_student(result: SubmissionResult) -> SubmissionResult:
    """A copy of ``result`` holding only what its feedback policy shows students."""
    if result.feedback == "full":
        return result
    if result.feedback == "hints":
        return result.model_copy(update={
            "tests": [t.model_copy(update={"fix": None}) for t in result.tests],
            "mistakes": [m.model_copy(update={"fix": None}) for m in result.mistakes],
        })
    tests = [t.model_copy(update={
        "name": f"{t.target}: {CATEGORY_LABELS.get(t.category, t.category)}", "message": "", "expected": None,
        "found": None, "hint": None, "fix": None, "cause": None, "mistake": None, "stdout": "", "data": {},
        "nodeid": "",
    }) for t in result.tests]
    problems = [p.model_copy(update={"message": "could not be graded", "detail": ""}) for p in result.problems]
    return result.model_copy(update={"tests": tests, "mistakes": [], "problems": problems, "artifacts": {},
                                     "flags": []})


def gradescope_tests(shown: SubmissionResult) -> list[dict[str, Any]]:
    """results.json's ``tests``: one per test, or under ``score`` one per class and category."""
    if shown.feedback == "score":
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for t in shown.tests:
            row = rows.setdefault((t.target, t.category), {
                "name": t.name, "score": 0.0, "max_score": 0.0, "passed": True, "visibility": "visible",
                "tags": [t.target, t.category]})
            row["score"] += t.score
            row["max_score"] += t.max_score
            row["passed"] = row["passed"] and t.outcome in (Outcome.passed, Outcome.skipped)
        return [{"name": r["name"], "score": round_points(r["score"]), "max_score": round_points(r["max_score"]),
                 "status": "passed" if r["passed"] else "failed", "output": "", "visibility": r["visibility"],
                 "tags": r["tags"]} for r in rows.values()]
    numbers = {m.key: n for n, m in enumerate(shown.mistakes, 1)}
    out = []
    for t in shown.tests:
        output = t.feedback()
        if t.mistake in numbers:
            entry = shown.mistakes[numbers[t.mistake] - 1]
            output += (f"\n\nThis is mistake {numbers[t.mistake]} of {len(shown.mistakes)} in your report "
                       f"({entry.target}): {entry.summary}")
        out.append({"name": t.name, "score": round_points(t.score), "max_score": round_points(t.max_score),
                    "status": t.status, "output": output, "visibility": t.visibility, "tags": [t.target, t.category]})
    return out
