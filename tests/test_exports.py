"""`grader export csv|json`: gradebook columns, injection guard, JSON summary, the format registry."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from resultfactory import MAX_SCORE, SUITE, make_result

from grader import cli
from grader.commands import export
from grader.report import exports
from grader.report.collect import collect
from grader.results import LmsIdentity, SubmissionResult, save

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1:A2)", "\tTab", "\rCR"]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    save(make_result("alice", p_pass=1.0, broken_files=(), flags=False), tmp_path / "alice")
    save(make_result("José Zoë 张伟", seed=3, p_pass=0.0), tmp_path / "jose")
    return tmp_path


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


BONUS = sum(row[3] for row in SUITE if row[2] == "bonus")


def regular(student: str, **kw) -> SubmissionResult:
    """A result as the engine makes it: extra credit counts in the score, not in the maximum."""
    return make_result(student, max_score=MAX_SCORE - BONUS, **kw)


def test_csv_has_a_column_per_class_and_category_a_maxima_row_and_extra_credit_apart(tmp_path, capsys):
    save(regular("alice", p_pass=1.0, broken_files=(), flags=False), tmp_path / "alice")
    save(regular("bob", seed=3, p_pass=0.5), tmp_path / "bob")
    assert cli.main(["export", "csv", str(tmp_path)]) == 0
    path = tmp_path / "gradebook.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
    assert b"\r\n" in raw
    header, maxima, *rows = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    classes = [h for h in header if h.startswith("class_")]
    cats = [h for h in header if h.startswith("category_")]
    # ModernCNN carries only extra credit: it has no column of regular points
    assert classes == [f"class_{t}" for t in dict.fromkeys(row[0] for row in SUITE if row[2] != "bonus")]
    assert cats == [f"category_{c}" for c in ("api", "shape", "params", "skip", "structure", "training", "device")]
    assert header[:4] == ["student", "score", "max_score", "percent"]
    assert header[-3:] == ["extra_credit", "problems", "flags"]
    top = dict(zip(header, maxima))
    assert top["student"] == "(maximum)" and top["max_score"] == f"{MAX_SCORE - BONUS:g}"
    # each family of columns adds up to max_score; the extra credit is on top, labelled as such
    assert sum(float(top[h]) for h in classes) == pytest.approx(MAX_SCORE - BONUS)
    assert sum(float(top[h]) for h in cats) == pytest.approx(MAX_SCORE - BONUS)
    assert float(top["extra_credit"]) == BONUS
    assert top["class_ResidualBlock"] == "12" and top["category_params"] == "8"
    for row in rows:
        cells = dict(zip(header, row))
        regular_points = sum(float(cells[h] or 0) for h in classes)
        assert regular_points == pytest.approx(sum(float(cells[h] or 0) for h in cats))
        assert regular_points + float(cells["extra_credit"]) == pytest.approx(float(cells["score"]))
    alice = dict(zip(header, rows[0]))
    assert alice["student"] == "alice" and alice["class_ResidualBlock"] == "12" and alice["extra_credit"] == "2"
    assert alice["problems"] == "0" and alice["flags"] == "0"
    assert str(path) in capsys.readouterr().err


def test_csv_of_a_non_ascii_name(out):
    assert cli.main(["export", "csv", str(out)]) == 0
    rows = read_csv(out / "gradebook.csv")
    assert rows[0]["student"] == "(maximum)"
    assert rows[2]["student"] == "José Zoë 张伟"
    assert rows[2]["problems"] == "1" and rows[2]["flags"] == "2"


@pytest.mark.parametrize("student", HOSTILE)
def test_csv_guards_against_formula_injection(tmp_path, student):
    save(make_result(student), tmp_path / "s")
    text = exports.gradebook_csv(collect(tmp_path))
    (_maxima, row) = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    assert row["student"] == "'" + student
    # numbers are never prefixed
    assert not row["score"].startswith("'")


def test_safe_cell_leaves_ordinary_text_alone():
    assert exports.safe_cell("alice") == "alice"
    assert exports.safe_cell("a=b") == "a=b"
    assert exports.safe_cell("") == ""


def test_number_format():
    assert [exports.number(x) for x in (3.0, 2.5, 1 / 3, 0.0, -0.0, 1e6, 72.375)] == [
        "3", "2.5", "0.33", "0", "0", "1000000", "72.38"]


def test_csv_to_stdout_has_no_bom(out):
    # bytes as a pipe gets them, without --no-bom
    proc = subprocess.run([sys.executable, "-m", "grader", "export", "csv", str(out), "-o", "-"],
                          capture_output=True, check=True)
    assert proc.stdout.startswith(b"student,score,")
    assert b"\xef\xbb\xbf" not in proc.stdout
    assert not (out / "gradebook.csv").exists()


def test_csv_reports_unreadable_submissions_and_exits_1(out, capsys):
    (out / "broken").mkdir()
    (out / "broken" / "grading.json").write_text("{", encoding="utf-8")
    assert cli.main(["export", "csv", str(out), "--out", str(out / "g.csv")]) == 1
    assert [r["student"] for r in read_csv(out / "g.csv")] == ["(maximum)", "alice", "José Zoë 张伟"]
    assert "1 submission(s) left out: broken" in capsys.readouterr().err


def test_json_summary_to_stdout(out, capsys):
    (out / "broken").mkdir()
    (out / "broken" / "grading.json").write_text("{", encoding="utf-8")
    assert cli.main(["export", "json", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "grader-class-summary" and data["version"] == 2
    assert data["assignments"] == ["day09-cnn-architectures"]
    assert [s["student"] for s in data["students"]] == ["alice", "José Zoë 张伟"]
    alice = data["students"][0]
    assert alice["categories"]["params"] == {"score": 8.0, "max_score": 8.0}
    assert alice["tests"] == {"passed": 16, "failed": 0, "error": 0, "skipped": 1}
    jose = data["students"][1]
    assert jose["problems"][0]["kind"] == "import" and "detail" not in jose["problems"][0]
    assert {f["kind"] for f in jose["flags"]} == {"timeout", "refused"}
    assert data["unreadable"][0]["folder"] == "broken"
    assert data["stats"]["count"] == 2


def test_json_summary_to_file(out):
    assert cli.main(["export", "json", str(out), "--out", str(out / "summary.json")]) == 0
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["stats"]["count"] == 2


@pytest.mark.parametrize("argv", [["export", "csv", "/nonexistent/x"], ["export", "json", "/nonexistent/x"]])
def test_bad_dir_is_a_usage_error(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grader export: error:") and "\n" not in err


def test_out_that_is_a_folder_is_a_usage_error(out, capsys):
    assert cli.main(["export", "csv", str(out), "--out", str(out)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_new_format_is_one_registry_entry(monkeypatch, out, capsys):
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("dir")

    def run(args: argparse.Namespace) -> int:
        print("zip for", args.dir)
        return 0

    monkeypatch.setitem(export.FORMATS, "gradescope", export.ExportFormat("an autograder zip", add, run))
    assert cli.main(["export", "gradescope", str(out)]) == 0
    assert "zip for" in capsys.readouterr().out
    assert set(export.FORMATS) >= {"csv", "json", "gradescope"}


# ---------------------------------------------------------------- LMS identifiers and layouts

MOODLE_DAVE = LmsIdentity(system="moodle", ids={"participant": "67890"}, name="Dave Smith")
CANVAS_DAVE = LmsIdentity(system="canvas", ids={"user_id": "12345", "attachment_id": "555"}, name="smithdave", late=True)


@pytest.fixture
def lms_class(tmp_path: Path) -> Path:
    save(regular("Dave-Smith", p_pass=1.0, broken_files=(), lms=MOODLE_DAVE, score=72.375), tmp_path / "Dave-Smith")
    save(regular("smithdave", seed=2, lms=CANVAS_DAVE), tmp_path / "smithdave")
    save(regular("walkin", seed=4), tmp_path / "walkin")
    return tmp_path


def test_lms_ids_are_columns_beside_the_student_id(lms_class):
    text = exports.gradebook_csv(collect(lms_class))
    header, maxima, *rows = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    assert header[:4] == ["student", "moodle_participant", "canvas_user_id", "canvas_late"]
    assert maxima[1:4] == ["", "", ""]
    assert [r[:4] for r in rows] == [["Dave-Smith", "67890", "", ""], ["smithdave", "", "12345", "yes"],
                                     ["walkin", "", "", ""]]


def test_no_lms_columns_without_lms_ids(out):
    header = exports.gradebook(collect(out))[0]
    assert not any(h.startswith(("moodle", "canvas")) for h in header)


def test_canvas_import_layout(lms_class, capsys):
    assert cli.main(["export", "canvas", str(lms_class), "--column", "Day 9 (4711)"]) == 1   # walkin left out
    err = capsys.readouterr().err
    assert "left out: Dave-Smith, walkin" in err
    rows = list(csv.reader(io.StringIO((lms_class / "canvas-grades.csv").read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Day 9 (4711)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", f"{MAX_SCORE - BONUS:g}"]
    r = collect(lms_class).graded[1].result
    assert rows[2:] == [["smithdave", "12345", "", "", "", exports.number(r.score)]]


def test_moodle_worksheet_layout(lms_class):
    assert cli.main(["export", "moodle", str(lms_class), "-o", str(lms_class / "w.csv")]) == 1
    rows = list(csv.DictReader(io.StringIO((lms_class / "w.csv").read_text(encoding="utf-8"), newline="")))
    # the columns Moodle's worksheet upload looks for: Identifier ("Participant N"), Grade, Last modified (grade)
    assert rows == [{"Identifier": "Participant 67890", "Full name": "Dave Smith", "Grade": "72.38",
                     "Maximum Grade": f"{MAX_SCORE - BONUS:g}", "Last modified (grade)": "2026-05-04T10:15:00+00:00"}]


@pytest.mark.parametrize("fmt", ["canvas", "moodle"])
def test_lms_export_of_a_class_without_lms_ids_is_refused_and_writes_nothing(out, fmt, capsys):
    assert cli.main(["export", fmt, str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"no graded student has a {fmt.capitalize()} identifier" in err and "\n" not in err
    assert not list(out.glob("*.csv"))
