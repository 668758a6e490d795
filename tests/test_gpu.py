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

from grader.audit import run_audit
from grader.report import render_student
from grader.results import Outcome
from grader.spec import find_spec

ROOT = Path(__file__).resolve().parents[1]


def gpu_tests(result):
    return [t for t in result.tests if "gpu" in t.name.lower() or "cuda" in t.name.lower()]


def test_without_the_gpu_the_gpu_checks_are_skipped_with_their_reason_in_the_report():
    from grader.engine import GradingSession

    spec = find_spec("day09")
    with GradingSession(spec, gpu=False) as session:
        result = session.grade(spec.reference, "reference", targets={"ModernCNN"})
    [check] = gpu_tests(result)
    assert check.outcome is Outcome.skipped and check.max_score == 0
    assert check.message.startswith("Not run on this machine: no CUDA GPU")
    assert result.score == result.max_score > 0
    assert check.message in render_student(result)


@pytest.fixture(scope="module")
def gpu_session():
    from grader.classrun import cuda_usable
    from grader.engine import GradingSession

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
