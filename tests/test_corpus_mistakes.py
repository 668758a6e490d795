"""Over the whole corpus: a submission with one mistake gets one entry in "What to fix", in its own class."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _single_mistake_cases(report):
    return [r for r in report.results
            if r.case.kind == "wrong" and len(r.case.targets) == 1 and not r.unavailable and r.error is None]


def test_every_single_mistake_case_yields_one_mistake_in_its_own_class(graded_corpus):
    cases = _single_mistake_cases(graded_corpus)
    assert cases
    wrong = {}
    for r in cases:
        found = [(m.target, m.key) for m in r.mistakes]
        if [target for target, _ in found] != list(r.case.targets):
            wrong[r.case.name] = found
    assert not wrong, f"{len(wrong)} of {len(cases)} single-mistake cases: " + "; ".join(
        f"{name} -> {found}" for name, found in sorted(wrong.items()))


def test_a_single_mistake_loses_no_points_in_other_classes_tests(graded_corpus):
    elsewhere = {r.case.name: [f"{f.target}: {f.name}" for f in r.failed if f.target not in r.case.targets]
                 for r in _single_mistake_cases(graded_corpus)}
    elsewhere = {name: tests for name, tests in elsewhere.items() if tests}
    assert not elsewhere, elsewhere


def test_most_single_mistakes_are_named_from_the_catalogue_not_as_an_output_difference(graded_corpus):
    cases = _single_mistake_cases(graded_corpus)
    named = [r.case.name for r in cases if len(r.mistakes) == 1 and r.mistakes[0].named]
    unnamed = sorted(r.case.name for r in cases if r.case.name not in named)
    assert len(named) >= 0.8 * len(cases), f"{len(named)}/{len(cases)} named; not named: {unnamed}"
