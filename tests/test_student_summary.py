"""results.json's top-level output is written for the student; the isolation line is the instructor's."""

from __future__ import annotations

from resultfactory import MAX_SCORE, SUITE, make_result

BONUS = sum(row[3] for row in SUITE if row[2] == "bonus")


def test_the_summary_gives_score_points_per_class_and_what_could_not_be_graded():
    r = make_result("alice", max_score=MAX_SCORE - BONUS, isolation="bubblewrap (no network); seccomp; pids<= 64")
    output = r.to_gradescope()["output"]
    lines = output.splitlines()
    assert lines[0].startswith(f"Score: {r.score:g} / {MAX_SCORE - BONUS:g} points, including ")
    assert "extra-credit points" in lines[0]
    for target, (got, out_of) in r.by_target().items():
        if target != "ModernCNN":
            assert f"- {target}: {got:g} / {out_of:g}" in lines
    assert "- ModernCNN: 2 / 2 extra credit" in lines or "- ModernCNN: 0 / 2 extra credit" in lines
    assert "Could not be graded:" in lines
    assert "- importing inception.py raised NameError: name 'nn' is not defined" in lines
    assert "bubblewrap" not in output and "seccomp" not in output and "isolation" not in output


def test_a_full_score_has_no_advice_to_read_the_failures():
    r = make_result("bob", p_pass=1.0, broken_files=(), max_score=MAX_SCORE - BONUS)
    for t in r.tests:
        if t.outcome.value == "skipped":
            t.max_score = 0.0
    r.tests[1].score = r.tests[1].max_score
    output = r.to_gradescope()["output"]
    assert "Could not be graded" not in output and "where points were lost" not in output
