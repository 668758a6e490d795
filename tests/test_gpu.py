"""The GPU checks.

Those marked ``gpu`` need a machine with CUDA (``bash scripts/test.sh -m gpu``)
and are deselected by default; asked for where CUDA is not usable, they fail
with that reason rather than pass or skip unseen. The first test runs
everywhere: a sandbox without the GPU skips the GPU checks, for no points and
with the reason in the student's report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.authoring.audit import run_audit
from grader.report import render_student
from grader.results import Outcome
from grader.spec import find_spec

ROOT = Path(__file__).resolve().parents[1]


def gpu_tests(result):
    return [t for t in result.tests if "gpu" in t.name.lower() or "cuda" in t.name.lower()]


def test_without_the_gpu_the_gpu_checks_are_skipped_with_their_reason_in_the_report():
    from grader.grading.engine import GradingSession

    spec = find_spec("day09")
    with GradingSession(spec, gpu=False) as session:
        result = session.grade(spec.reference, "reference", targets={"ModernCNN"})
    [check] = gpu_tests(result)
    assert check.outcome is Outcome.skipped and check.max_score == 0
    assert check.message.startswith("Not run on this machine: no CUDA GPU")
    assert result.score == result.max_score > 0
    assert check.message in render_student(result)


def test_on_a_run_with_the_gpu_a_worker_hiding_cuda_fails_the_gpu_test_and_its_points_stay(monkeypatch):
    """The GPU simulated on the trusted side: the suite's gates (grader.testing.cuda_available) say the
    machine has one and the sandbox is started with the GPU, while the worker (a submission patching
    torch.cuda.is_available; here no device exists at all) answers that it is not. The GPU test fails, and
    the device points are not moved to the meta test."""
    import grader.testing
    from grader.grading.engine import GradingSession

    monkeypatch.setattr(grader.testing, "cuda_available", lambda: True)   # the reference's probes stay on the CPU
    spec = find_spec("day09")
    with GradingSession(spec, gpu=True) as session:
        result = session.grade(ROOT / "tests" / "attacks" / "hidden_cuda", "hidden_cuda", targets={"ModernCNN"})
    [check] = gpu_tests(result)
    assert check.outcome is Outcome.failed, (check.outcome, check.message)
    assert "reported that CUDA is not available" in check.message
    device = [t for t in result.tests if t.category == "device"]
    assert len(device) == 2 and {t.max_score for t in device} == {check.max_score} and check.score == 0
    assert not any(f.kind == "internal" for f in result.flags), result.flags
    assert any(f.kind == "refused" and "torch.cuda.is_available" in f.detail for f in result.flags), result.flags


def test_a_skipped_test_keeps_its_points_on_a_run_with_the_gpu():
    from grader.grading.plugin import assign_points
    from grader.results import TestResult

    spec = find_spec("day09")
    item = next(i for i in spec.rubric if i.category == "device" and i.target == "ModernCNN")
    results = [TestResult(nodeid=f"t{n}", name=f"t{n}", target=item.target, category="device", outcome=outcome,
                          score=0, max_score=0)
               for n, outcome in enumerate([Outcome.passed, Outcome.skipped])]
    with_gpu = assign_points(spec, results, {item.target}, gpu=True)
    assert [(t.max_score, t.score) for t in with_gpu] == [(item.points / 2, item.points / 2), (item.points / 2, 0)]
    without = assign_points(spec, results, {item.target}, gpu=False)
    assert [(t.max_score, t.score) for t in without] == [(item.points, item.points), (0, 0)]


@pytest.fixture(scope="module")
def gpu_session():
    from grader.classrun.executors.local import cuda_usable
    from grader.grading.engine import GradingSession

    if not cuda_usable():
        pytest.fail("the GPU checks need CUDA: no usable CUDA device here (CUDA_VISIBLE_DEVICES, a CPU build of "
                    "torch, or no /dev/nvidia*)")
    with GradingSession(find_spec("day09"), gpu=True) as session:
        yield session


@pytest.mark.gpu
def test_the_reference_passes_every_gpu_test_on_the_gpu(gpu_session):
    result = gpu_session.grade(gpu_session.spec.reference, "reference")
    checks = gpu_tests(result)
    assert len(checks) >= 10
    assert [(t.name, t.outcome.value, t.message) for t in checks if t.outcome is not Outcome.passed] == []
    assert result.score >= result.max_score


@pytest.mark.gpu
def test_the_gpu_only_mistake_is_caught_on_the_gpu(gpu_session):
    report = run_audit(gpu_session.spec, ROOT / "tests" / "corpus", only=["wrong/training_gpu_timing_no_sync"],
                       session=gpu_session)
    [case] = report.results
    assert case.unavailable is None and case.caught_by, case.verdict()
