"""One rounding rule for every number shown: the CLI, the CSV, the HTML reports and results.json agree."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from resultfactory import make_result

from grader import cli
from grader.classrun.summary import StudentOutcome, Summary
from grader.classrun.gradebook import Gradebook
from grader.points import percent_text, points_text, round_points
from grader.report import write_class_report, write_student_report
from grader.report.collect import collect
from grader.report.exports import gradebook_csv, summary
from grader.results import RESULTS_FILE, save


@pytest.mark.parametrize("x, shown", [
    (72.375, "72.38"), (0.125, "0.13"), (2.675, "2.68"), (1.005, "1.01"), (72.37499999999999, "72.38"),
    (72.374, "72.37"), (1 / 3, "0.33"), (72.5, "72.5"), (72.0, "72"), (0.0, "0"), (-0.0, "0"), (1e6, "1000000"),
])
def test_half_away_from_zero_at_two_decimals(x, shown):
    assert points_text(x) == shown
    assert round_points(x) == float(shown)


def test_percent_follows_the_same_rule():
    assert percent_text(72.375, 100) == "72.38"
    assert percent_text(1, 3) == "33.33"
    assert percent_text(1, 0) == "0"


def test_the_same_score_everywhere(tmp_path, capsys):
    result = make_result("alice", score=72.375, max_score=100.0)
    folder = tmp_path / "alice"
    save(result, folder)
    write_student_report(result, folder)
    write_class_report(tmp_path)

    gradescope = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    assert gradescope["score"] == 72.38
    assert gradescope["output"].startswith("Score: 72.38 / 100 points")

    header, _maxima, row = csv.reader(io.StringIO(gradebook_csv(collect(tmp_path)).lstrip("\ufeff"), newline=""))
    assert dict(zip(header, row))["score"] == "72.38" and dict(zip(header, row))["percent"] == "72.38"
    assert summary(collect(tmp_path))["students"][0]["score"] == 72.38

    for page in (folder / "report.html", tmp_path / "class-report.html"):
        html = page.read_text(encoding="utf-8")
        assert "72.38" in html and "72.375" not in html and "72.37<" not in html

    run = Summary(assignment="day09", out=tmp_path, suite_key="k", executor="local",
                  students=[StudentOutcome(student="alice", status="graded", score=72.375, max_score=100.0)])
    assert "72.38/100  72.38%" in "\n".join(run.lines())

    with Gradebook.for_output(tmp_path) as book:
        run_id = book.start_run(assignment="day09", suite_key="k", grader_version="0", command="", jobs=1,
                                executor="local")
        book.record(run_id, "alice", "graded", "k", 72.375, 100.0)
    assert cli.main(["history", str(tmp_path), "alice"]) == 0
    out = capsys.readouterr().out
    assert "72.38/100" in out and "72.375" not in out
