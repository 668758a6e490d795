"""`grader audit --exposure`: the tests a lying worker could pass are listed with their points."""

from __future__ import annotations

from pathlib import Path

from grader.authoring.exposure import SELF_REPORTED, exposure_lines, reference_exposure
from grader.spec import load_spec
from grader.worker.probes import PROBES

ROOT = Path(__file__).resolve().parents[1]


def test_every_self_reported_probe_exists() -> None:
    assert SELF_REPORTED <= set(PROBES), SELF_REPORTED - set(PROBES)


def test_tests_judging_only_reported_facts_are_listed_with_their_points() -> None:
    spec = load_spec(ROOT / "tests" / "fixtures" / "minicourse")
    exposed, total = reference_exposure(spec)
    by_test = {e.test: e for e in exposed}
    assert set(by_test) == {"test_param_count", "test_shape"}, by_test  # param_count and forward_shape only
    assert by_test["test_param_count"].probes == ["param_count"] and by_test["test_param_count"].points > 0
    lines = exposure_lines(exposed, total)
    assert lines[0].startswith(f"exposure: 2 of {total} tests") and any("test_shape" in line for line in lines)
