"""`grader export csv|json`: gradebook columns, injection guard, JSON summary, the format registry."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import pytest
from resultfactory import MAX_SCORE, make_result

from grader import cli
from grader.commands import export
from grader.report import exports
from grader.report.collect import collect
from grader.results import save

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1:A2)", "\tTab", "\rCR"]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    save(make_result("alice", p_pass=1.0, broken_files=(), flags=False), tmp_path / "alice")
    save(make_result("José Zoë 张伟", seed=3, p_pass=0.0), tmp_path / "jose")
    return tmp_path


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def test_csv_columns_and_values(out, capsys):
    assert cli.main(["export", "csv", str(out)]) == 0
    path = out / "gradebook.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
    assert b"\r\n" in raw
    rows = read_csv(path)
    assert list(rows[0]) == [
        "student", "score", "max_score", "percent",
        "points_api", "points_shape", "points_params", "points_skip", "points_structure",
        "points_training", "points_device", "points_bonus", "problems", "flags",
    ]
    alice, jose = rows
    assert alice["student"] == "alice"
    assert alice["score"] == f"{MAX_SCORE - 1:g}" and alice["max_score"] == f"{MAX_SCORE:g}"
    assert alice["percent"] == f"{100 * (MAX_SCORE - 1) / MAX_SCORE:.2f}"
    assert alice["points_params"] == "8" and alice["points_device"] == "1"
    assert alice["problems"] == "0" and alice["flags"] == "0"
    assert jose["student"] == "José Zoë 张伟"
    assert jose["problems"] == "1" and jose["flags"] == "2"
    r = make_result("José Zoë 张伟", seed=3, p_pass=0.0)
    assert float(jose["score"]) == r.score
    assert sum(float(v) for k, v in jose.items() if k.startswith("points_")) == pytest.approx(r.score)
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize("student", HOSTILE)
def test_csv_guards_against_formula_injection(tmp_path, student):
    save(make_result(student), tmp_path / "s")
    text = exports.gradebook_csv(collect(tmp_path))
    (row,) = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    assert row["student"] == "'" + student
    # numbers are never prefixed
    assert not row["score"].startswith("'")


def test_safe_cell_leaves_ordinary_text_alone():
    assert exports.safe_cell("alice") == "alice"
    assert exports.safe_cell("a=b") == "a=b"
    assert exports.safe_cell("") == ""


def test_number_format():
    assert [exports.number(x) for x in (3.0, 2.5, 1 / 3, 0.0, -0.0, 1e6)] == ["3", "2.5", "0.3333", "0", "0", "1000000"]


def test_csv_to_stdout_without_bom(out, capsys):
    assert cli.main(["export", "csv", str(out), "--out", "-", "--no-bom"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("student,score,")


def test_csv_reports_unreadable_submissions_and_exits_1(out, capsys):
    (out / "broken").mkdir()
    (out / "broken" / "grading.json").write_text("{", encoding="utf-8")
    assert cli.main(["export", "csv", str(out), "--out", str(out / "g.csv")]) == 1
    assert len(read_csv(out / "g.csv")) == 2
    assert "left out of the gradebook: broken" in capsys.readouterr().err


def test_json_summary_to_stdout(out, capsys):
    (out / "broken").mkdir()
    (out / "broken" / "grading.json").write_text("{", encoding="utf-8")
    assert cli.main(["export", "json", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "grader-class-summary" and data["version"] == 1
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
