"""The class report and `grader report DIR`."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest
from resultfactory import MAX_SCORE, make_result

from grader import cli
from grader.report import write_class_report
from grader.report.classreport import class_view, histogram, report_href
from grader.report.collect import collect
from grader.results import save

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def three_students(out: Path) -> None:
    """a: everything passes; b: everything fails; c: everything fails and inception.py does not import."""
    save(make_result("a", p_pass=1.0, broken_files=(), flags=False), out / "a")
    save(make_result("b", p_pass=0.0, broken_files=(), flags=False), out / "b")
    save(make_result("c", p_pass=0.0, broken_files=("inception.py",), flags=True), out / "c")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    three_students(tmp_path)
    return tmp_path


def test_aggregation_numbers(out):
    view = class_view(collect(out))
    assert [s["student"] for s in view["students"]] == ["a", "b", "c"]
    tests = {(t["target"], t["name"]): t for t in view["tests"]}

    resnet = tests[("ResNet", "ResNet-18 parameter count")]
    assert (resnet["passed"], resnet["failed"], resnet["error"], resnet["ran"]) == (1, 2, 0, 3)
    assert resnet["pass_rate"] == pytest.approx(100 / 3)
    inception = tests[("SimplifiedInception", "branch kernel sizes and order")]
    assert (inception["passed"], inception["failed"], inception["error"], inception["not_passed"]) == (1, 1, 1, 2)
    # a test that ran for nobody (no GPU here) is not a row: it is listed once, with its reason
    assert ("ResNet", "forward on CUDA") not in tests
    assert [(t["target"], t["name"]) for t in view["not_run"]] == [("ResNet", "forward on CUDA")]
    assert view["not_run_reasons"] == ["No CUDA device on the grading machine; this check runs on the GPU grader."]
    # sorted by how many students did not pass
    assert [t["not_passed"] for t in view["tests"]] == sorted((t["not_passed"] for t in view["tests"]), reverse=True)
    # same test name in two classes stays two rows
    assert ("MobileNetV1", "parameter count") in tests and ("DepthwiseSeparableConv", "parameter count (32, 64)") in tests

    cats = {c["name"]: c for c in view["categories"]}
    assert cats["params"]["students_failed"] == 2
    assert cats["device"]["skipped"] == 3 and cats["device"]["ran"] == 3  # the meta-device test ran
    assert view["categories"][0]["students_failed"] >= view["categories"][-1]["students_failed"]

    # per class: mean points out of the points that ran, pass rate = full marks on the class's tests, below half
    classes = {c["target"]: c for c in view["classes"]}
    resnet = classes["ResNet"]
    assert resnet["max"] == 4 and resnet["mean"] == pytest.approx(4 / 3)  # forward on CUDA carries no points here
    assert (resnet["students"], resnet["full"], resnet["below_half"]) == (3, 1, 2)
    assert resnet["pass_rate"] == pytest.approx(100 / 3)
    block = classes["ResidualBlock"]  # b and c have partial credit on one test: not full marks, still below half
    assert (block["full"], block["below_half"]) == (1, 2) and block["mean"] == pytest.approx((12 + 1 + 1) / 3)
    assert classes["ModernCNN"]["bonus"] and not resnet["bonus"]
    rates = [(c["bonus"], c["pass_rate"], c["mean_percent"]) for c in view["classes"]]
    assert rates == sorted(rates) and view["classes"][-1]["target"] == "ModernCNN"  # weakest first, bonus last

    # mistakes: one entry per cause, counted once per student, however many tests it failed
    mistakes = {m["title"]["text"]: m for m in view["mistakes"]}
    m = mistakes["the convolutions before batch normalisation have bias=True (+3,840)"]
    assert m["count"] == 2 and m["target"] == "ResNet"
    assert [s["student"] for s in m["examples"]] == ["b", "c"]
    depthwise = mistakes["the depthwise convolution has no groups=in_channels"]
    assert depthwise["count"] == 2 and len(depthwise["tests"]) == 2
    assert mistakes["the 3x3 and 5x5 branches are concatenated in the wrong order"]["count"] == 1  # c's is an error
    assert [m["count"] for m in view["mistakes"]] == sorted((m["count"] for m in view["mistakes"]), reverse=True)
    assert {s["student"]: s["mistakes"] for s in view["students"]} == {"a": 0, "b": 15, "c": 14}

    counts = [b["count"] for b in view["histogram"]["bars"]]
    assert counts == [2, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert view["stats"]["count"] == 3
    assert view["stats"]["max"] == pytest.approx(100 * (MAX_SCORE - 1) / MAX_SCORE)
    assert [f["student"] for f in view["flagged"]] == ["c"]
    assert [f["student"] for f in view["ungradable"]] == ["c"] and view["only_flagged"] == []


def test_histogram_bins_include_100_and_bonus_scores_in_the_last_bin():
    h = histogram([0, 9.99, 10, 55, 99.9, 100, 108])
    assert [b["count"] for b in h["bars"]] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 3]
    assert h["bars"][-1]["label"] == "90% and up"


def test_class_report_page(out):
    for name in "abc":
        (out / name / "report.html").write_text("x")
    path = write_class_report(out)
    assert path == out / "class-report.html"
    page = path.read_text(encoding="utf-8")
    assert 'id="histogram"' in page and "<rect class=\"bar\"" in page
    for name in "abc":
        assert f'href="{name}/report.html"' in page
    assert "Mistakes, most students first" in page and "2 students" in page
    assert "NameError" in page  # c's import problem is flagged
    assert "timeout" in page and "refused" in page
    assert "<script" not in page


def test_unreadable_listed_and_folders_without_results_ignored(out):
    (out / "broken").mkdir()
    (out / "broken" / "grading.json").write_text("{not json", encoding="utf-8")
    (out / "wrong-shape").mkdir()
    (out / "wrong-shape" / "grading.json").write_text(json.dumps({"student": "x"}), encoding="utf-8")
    (out / "not-graded-yet").mkdir()
    (out / "stray-file.txt").write_text("hello")
    found = collect(out)
    assert [g.folder for g in found.graded] == ["a", "b", "c"]
    assert [u.folder for u in found.unreadable] == ["broken", "wrong-shape"]
    assert all("\n" not in u.reason for u in found.unreadable)
    page = write_class_report(out).read_text(encoding="utf-8")
    assert "Unreadable results (2)" in page and "broken" in page and "wrong-shape" in page
    assert "not-graded-yet" not in page


def test_class_report_escapes_student_ids_and_folder_names(tmp_path):
    folder = IMG  # a legal folder name
    r = make_result(SCRIPT + IMG, p_pass=0.0)
    r.tests[2].hint = SCRIPT
    r.problems[0].message = SCRIPT + IMG
    r.flags[0].detail = SCRIPT + IMG
    save(r, tmp_path / folder)
    write_class_report(tmp_path)  # first without the report: no link
    (tmp_path / folder / "report.html").write_text("x")
    page = write_class_report(tmp_path).read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert html.escape(SCRIPT) in page
    assert f'href="{report_href(folder)}"' in page
    assert report_href(folder) == "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/report.html"


def test_empty_class_report(tmp_path):
    page = write_class_report(tmp_path).read_text(encoding="utf-8")
    assert "0 submissions graded" in page and "No submission could be read." in page


# ---------------------------------------------------------------- grader report


def test_command_rebuilds_student_reports_and_class_report(out, capsys):
    (out / "broken").mkdir()
    (out / "broken" / "grading.json").write_text("[]", encoding="utf-8")
    assert cli.main(["report", str(out)]) == 0
    for name in "abc":
        assert (out / name / "report.html").is_file()
    assert (out / "class-report.html").is_file()
    captured = capsys.readouterr()
    assert "class-report.html" in captured.out and "3 student reports" in captured.out
    assert "broken" in captured.err


def test_command_on_one_student_folder(out, capsys):
    assert cli.main(["report", str(out / "b")]) == 0
    assert (out / "b" / "report.html").is_file()
    assert not (out / "class-report.html").exists()


@pytest.mark.parametrize("case", ["missing", "file", "empty"])
def test_command_bad_dir_is_a_one_line_usage_error(tmp_path, capsys, case):
    target = tmp_path / "x"
    if case == "file":
        target.write_text("x")
    elif case == "empty":
        target.mkdir()
    assert cli.main(["report", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grader report: error:") and "\n" not in err


@pytest.mark.slow
def test_two_copies_of_bob_one_with_another_padding_are_his_mistakes_each_counted_twice(tmp_path):
    """Graded for real: bob, and bob with padding=0 where he wrote padding=1 in the 5x5 branch."""
    from grader.grading.engine import GradingSession
    from grader.report.grouping import mistakes_of
    from grader.spec import find_spec

    bob = Path(__file__).resolve().parents[1] / "submissions" / "bob"
    variant = tmp_path / "bob-padding-0"
    shutil.copytree(bob, variant)
    source = (variant / "inception.py").read_text(encoding="utf-8")
    wrong = "nn.Conv2d(ch5x5_reduce, ch5x5, 5, padding=1)"
    assert wrong in source
    (variant / "inception.py").write_text(source.replace(wrong, wrong.replace("padding=1", "padding=0")), encoding="utf-8")
    with GradingSession(find_spec("day09")) as session:
        for folder in (bob, variant):
            save(session.grade(folder), tmp_path / "out" / folder.name)

    found = collect(tmp_path / "out")
    view = class_view(found)
    own = mistakes_of(found.graded[0].result)
    assert len(own) >= 3 and sum(len(m.tests) for m in own) > len(own)  # several mistakes, some failing many tests
    assert [m["count"] for m in view["mistakes"] + view["rare_mistakes"]] == [2] * len(own)
    padding = [m for m in view["mistakes"] if m["target"] == "InceptionModule"]
    assert len(padding) == 1 and [s["student"] for s in padding[0]["examples"]] == ["bob", "bob-padding-0"]
