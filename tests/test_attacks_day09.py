"""Hostile and mistaken Day 9 submissions that need the real suite (slow: each grades a few classes of it).

- ``day09_skip_fake``: blocks without skip connections that zero the probe's
  own input through its autograd graph; the skip tests compare with the
  trusted side's copy of the input, so all three fail;
- ``day09_wrong_shapes_types``: a ResidualBlock one channel short and scaling
  helpers that return arrays: failed tests, never an internal error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading.engine import GradingSession
from grader.results import Outcome
from grader.spec import find_spec

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ROOT / "tests" / "attacks"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session():
    with GradingSession(find_spec("day09")) as s:
        yield s


def outcomes(result) -> dict[str, Outcome]:
    return {t.nodeid: t.outcome for t in result.tests}


def test_zeroing_the_probes_input_passes_no_skip_test(session) -> None:
    result = session.grade(ATTACKS / "day09_skip_fake", "skip_fake",
                           targets={"ResidualBlock", "WithSkipBlock", "NoSkipBlock"})
    got = outcomes(result)
    for test in ("test_identity_shortcut", "test_withskip_returns_input", "test_noskip_has_no_shortcut"):
        assert got[test] is Outcome.failed, (test, got[test])
    messages = {t.nodeid: t.message for t in result.tests}
    assert "changed by the module" in messages["test_noskip_has_no_shortcut"]
    assert not any(f.kind == "internal" for f in result.flags), result.flags


def test_wrong_shapes_and_types_are_the_students_failures(session) -> None:
    result = session.grade(ATTACKS / "day09_wrong_shapes_types", "wrong_shapes_types",
                           targets={"ResidualBlock", "round_depth", "round_resolution"})
    got = outcomes(result)
    assert got["test_identity_shortcut"] is Outcome.failed
    assert got["test_round_depth"] is Outcome.failed and got["test_round_resolution"] is Outcome.failed
    assert not any(f.kind == "internal" for f in result.flags), result.flags
    assert not any(t.outcome is Outcome.error and "internal" in t.message for t in result.tests)
