"""The feedback policy decides what students see: hints (default), full (the fix too), score (points per class)."""

from __future__ import annotations

import json

from markupsafe import escape
from resultfactory import make_result

from grader.results import for_student
from grader.grading.mistakes import diagnose
from grader.report import render_student
from grader.results import Outcome
from grader.spec import find_spec

FIX = "nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)"


def result_with_a_fix(policy: str):
    r = make_result(p_pass=0.5, broken_files=())
    failed = next(t for t in r.tests if t.outcome is Outcome.failed and t.hint)
    failed.fix = FIX
    tests, mistakes = diagnose(find_spec("day09"), r.tests, r.problems)
    return r.model_copy(update={"tests": tests, "mistakes": mistakes, "feedback": policy}), failed


def test_hints_say_what_is_wrong_but_never_the_fix():
    r, failed = result_with_a_fix("hints")
    assert any(m.fix == FIX for m in r.mistakes)  # the instructor's record keeps it
    out = json.dumps(r.to_gradescope())
    page = render_student(r)
    assert FIX not in out and str(escape(FIX)) not in page
    assert failed.hint in out and str(escape(failed.hint)) in page
    assert all(m.fix is None for m in for_student(r).mistakes)


def test_full_shows_the_fix_too():
    r, failed = result_with_a_fix("full")
    gradescope = r.to_gradescope()
    [row] = [t for t in gradescope["tests"] if t["name"] == failed.name]
    assert f"How to fix it: {FIX}" in row["output"]
    assert "How to fix it:" in render_student(r) and str(escape(FIX)) in render_student(r)


def test_score_shows_points_per_class_only():
    r, failed = result_with_a_fix("score")
    gradescope = r.to_gradescope()
    rows = gradescope["tests"]
    assert {(row["tags"][0], row["tags"][1]) for row in rows} == {(t.target, t.category) for t in r.tests}
    assert all(row["output"] == "" for row in rows)
    assert sum(row["score"] for row in rows) == round(r.score, 4)
    text = json.dumps(gradescope)
    page = render_student(r)
    for t in r.tests:
        if t.outcome is Outcome.failed:
            for part in (t.name, t.message, t.hint, t.expected, t.found):
                if part:
                    assert part not in text and str(escape(part)) not in page, part
    assert "What to fix" not in page and "the points per class only" in page
    for target, (got, out_of) in r.by_target().items():
        row = page[page.index(f'<tr id="target-{target.lower()}"'):]
        assert f"{got:g} / {out_of:g}" in row[: row.index("</tr>")]


def test_each_failed_test_in_results_json_points_to_its_mistake():
    r, _ = result_with_a_fix("hints")
    rows = {t.name: row for t, row in zip(r.tests, r.to_gradescope()["tests"])}
    for t in r.tests:
        if t.outcome is Outcome.failed:
            n = [m.key for m in r.mistakes].index(t.mistake) + 1
            assert f"This is mistake {n} of {len(r.mistakes)} in your report" in rows[t.name]["output"]
