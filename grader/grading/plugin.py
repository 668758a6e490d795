"""The pytest plugin that turns a hidden suite run into ``TestResult`` records.

It provides the ``student``, ``reference``, ``spec`` and ``artifacts`` fixtures,
checks that every test carries a ``grade`` marker whose (target, category) is in
the rubric, and records each test's outcome with a student-facing message.
Hidden tests never show their source: only messages written for students, and
the student's own traceback lines, reach a result.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from grader.grading.client import SubmissionError
from grader.grading.isolation import Isolation
from grader.results import Outcome, TestResult
from grader.spec import AssignmentSpec
from grader.testing import Mistake, ReferenceImplementation, StudentImplementation

ERROR_HINTS = {
    "missing": "Add the file or class with exactly the name the skeleton uses.",
    "not_class": "Define it as a class deriving from nn.Module, as in the skeleton.",
    "signature": "Keep the skeleton's constructor signature: the same parameters, in the same order.",
    "not_implemented": "This part still raises NotImplementedError: fill in the TODO.",
    "import": "Fix the error in this file; the other files were graded separately.",
    "timeout": "Look for a loop that never ends, or work that grows with the input far more than needed.",
    "memory": "Look for tensors kept in a list inside a loop, or layers built inside forward.",
    "crash": "Do not call os._exit or send signals; let exceptions propagate.",
    "wrong_type": "Return what the skeleton's docstring says (a tensor for forward, a module for constructors).",
}


class SuiteError(Exception):
    """The hidden suite does not match the spec (a course-team bug, never the student's)."""


class GradingPlugin:
    def __init__(self, spec: AssignmentSpec, student: StudentImplementation, reference: ReferenceImplementation,
                 deadline: float, targets: set[str] | None = None, isolation: Isolation | None = None) -> None:
        self.assignment = spec
        self.targets = targets
        self.isolation = isolation
        self._student = student
        self._reference = reference
        self.deadline = deadline
        self.skipped_for_time: list[str] = []
        self.results: list[TestResult] = []
        self.artifacts_store: dict[str, Any] = {}
        self.internal_errors: list[str] = []
        self._started: dict[str, float] = {}

    # fixtures -------------------------------------------------------------
    @pytest.fixture
    def student(self) -> StudentImplementation:
        return self._student

    @pytest.fixture
    def reference(self) -> ReferenceImplementation:
        return self._reference

    @pytest.fixture(name="spec")
    def spec_fixture(self) -> AssignmentSpec:
        return self.assignment

    @pytest.fixture
    def artifacts(self) -> dict[str, Any]:
        """Data for the report (layer tables, loss curves): ``artifacts.setdefault(section, {})[target] = ...``."""
        return self.artifacts_store

    # collection -----------------------------------------------------------
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        problems, covered = [], set()
        for item in items:
            mark = item.get_closest_marker("grade")
            if mark is None:
                problems.append(f"{item.nodeid}: no @grade(target, category) marker")
                continue
            target, category = mark.kwargs.get("target"), mark.kwargs.get("category")
            if self.assignment.rubric_item(target, category) is None:
                problems.append(f"{item.nodeid}: {target}/{category} is not in the rubric")
            covered.add((target, category))
        for rubric_item in self.assignment.rubric:
            if (rubric_item.target, rubric_item.category) not in covered:
                problems.append(f"rubric {rubric_item.target}/{rubric_item.category} has no test")
        if problems:
            raise SuiteError("; ".join(problems))
        if self.targets is not None:
            keep = [i for i in items if i.get_closest_marker("grade").kwargs["target"] in self.targets]
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep
        if self.isolation is not None and self.isolation.active:
            # A target's dependencies are judged first, so their verdicts are known when its own tests run.
            level = self.assignment.dependency_order()
            items.sort(key=lambda i: level[i.get_closest_marker("grade").kwargs["target"]])

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            raise SuiteError(f"the hidden suite failed to collect {report.nodeid}:\n{report.longreprtext[-2000:]}")

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "grade(target, category, timeout): the class under test and rubric category")

    # running --------------------------------------------------------------
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._started[item.nodeid] = time.monotonic()
        self._student.stdout.clear()
        self._student.notes.clear()
        if self.isolation is not None:
            self.isolation.begin(item.get_closest_marker("grade").kwargs["target"])
        if time.monotonic() > self.deadline:
            self.skipped_for_time.append(item.nodeid.split("::", 1)[-1])
            raise SubmissionError("timeout", "the submission's total time limit was used up before this test ran")
        mark = item.get_closest_marker("grade")
        if mark.kwargs.get("timeout"):
            self._student.default_timeout = float(mark.kwargs["timeout"])
        else:
            self._student.default_timeout = self.assignment.limits.request_timeout_s

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.results.append(self._record(item, call, report))

    def _record(self, item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> TestResult:
        mark = item.get_closest_marker("grade")
        doc = (getattr(item, "function", None).__doc__ or "").strip().splitlines() if hasattr(item, "function") else []
        name = doc[0].strip() if doc else item.name
        fields: dict[str, Any] = {}
        exc = call.excinfo.value if call.excinfo else None
        if report.passed:
            outcome, message = Outcome.passed, "Correct."
        elif report.skipped:
            reason = str(getattr(exc, "msg", exc) or "skipped")
            outcome, message = Outcome.skipped, f"Not run on this machine: {reason}"
        elif isinstance(exc, Mistake):
            outcome, message = Outcome.failed, exc.message
            fields = {"expected": exc.expected, "found": exc.found, "hint": exc.hint, "data": exc.data,
                      "cause": exc.cause, "fix": exc.fix}
        elif isinstance(exc, SubmissionError):
            outcome, message = Outcome.error, exc.message
            fields = {"hint": ERROR_HINTS.get(exc.kind), "data": {"error_kind": exc.kind}}
            if exc.traceback:
                fields["found"] = exc.traceback
        else:
            outcome = Outcome.error
            message = "The grader could not run this check (an internal error, not your fault); your instructor has been told."
            self.internal_errors.append(f"{item.nodeid}: {type(exc).__name__}: {exc}")
            fields = {"data": {"error_kind": "internal"}}
        if self.isolation is not None:
            self.isolation.record(mark.kwargs["target"], outcome in (Outcome.failed, Outcome.error))
        if self._student.notes:
            fields["notes"] = list(self._student.notes)
        stdout = "".join(self._student.stdout)
        limit = self.assignment.limits.output_bytes
        if len(stdout) > limit:
            stdout = stdout[:limit] + "\n[output truncated]"
        return TestResult(
            name=name, nodeid=item.nodeid.split("::", 1)[-1], target=mark.kwargs["target"],
            category=mark.kwargs["category"], score=0.0, max_score=0.0, outcome=outcome, message=message,
            duration_s=round(time.monotonic() - self._started.get(item.nodeid, time.monotonic()), 3),
            visibility="visible" if self.assignment.rubric_item(mark.kwargs["target"], mark.kwargs["category"]).visible else "hidden",
            stdout=stdout, **{k: v for k, v in fields.items() if v is not None},
        )


def assign_points(spec: AssignmentSpec, results: list[TestResult], targets: set[str] | None = None,
                  gpu: bool = False) -> list[TestResult]:
    """Split each rubric item's points evenly among its tests that ran (skipped tests carry none).

    On a run with the GPU (``gpu``) nothing has a reason to be skipped, so a
    skipped test keeps its share and scores 0: its points never move to
    another test of the same item.
    """
    out = []
    for item in spec.rubric:
        if targets is not None and item.target not in targets:
            continue
        mine = [r for r in results if r.target == item.target and r.category == item.category]
        ran = mine if gpu else [r for r in mine if r.outcome is not Outcome.skipped]
        share = item.points / len(ran) if ran else 0.0
        for r in mine:
            max_score = share if any(r is x for x in ran) else 0.0
            score = max_score if r.outcome is Outcome.passed else 0.0
            out.append(r.model_copy(update={"max_score": round(max_score, 6), "score": round(score, 6)}))
    return out
