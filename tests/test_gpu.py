"""The GPU checks, on a machine with CUDA: ``bash scripts/test.sh -m gpu``.

They are deselected by default. Asked for on a machine where CUDA is not
usable, they fail with that reason rather than pass or skip unseen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.audit import run_audit
from grader.results import Outcome
from grader.spec import find_spec

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[1]


def gpu_tests(result):
    return [t for t in result.tests if "gpu" in t.name.lower() or "cuda" in t.name.lower()]


@pytest.fixture(scope="module")
def gpu_session():
    from grader.classrun import cuda_usable
    from grader.engine import GradingSession

    if not cuda_usable():
        pytest.fail("the GPU checks need CUDA: no usable CUDA device here (CUDA_VISIBLE_DEVICES, a CPU build of "
                    "torch, or no /dev/nvidia*)")
    with GradingSession(find_spec("day09"), gpu=True) as session:
        yield session


def test_the_reference_passes_every_gpu_test_on_the_gpu(gpu_session):
    result = gpu_session.grade(gpu_session.spec.reference, "reference")
    checks = gpu_tests(result)
    assert len(checks) >= 10
    assert [(t.name, t.outcome.value, t.message) for t in checks if t.outcome is not Outcome.passed] == []
    assert result.score >= result.max_score


def test_the_gpu_only_mistake_is_caught_on_the_gpu(gpu_session):
    report = run_audit(gpu_session.spec, ROOT / "tests" / "corpus", only=["wrong/training_gpu_timing_no_sync"],
                       session=gpu_session)
    [case] = report.results
    assert case.unavailable is None and case.caught_by, case.verdict()
