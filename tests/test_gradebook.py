"""The gradebook records every run and every student's score; ``grader history`` shows them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from grader.classrun.run import grade_class
from grader.cli import main as cli
from grader.classrun.gradebook import GRADEBOOK_FILE, Gradebook, GradebookError, current_user
from grader.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"
REFERENCE = (MINICOURSE / "reference" / "blocks.py").read_text()
HALF = REFERENCE.replace("return 2 * x", "return 3 * x")


def test_runs_and_grades_round_trip(tmp_path):
    with Gradebook.for_output(tmp_path) as book:
        run = book.start_run(assignment="mini", suite_key="s1" * 32, grader_version="0.1.0", command="grader run x",
                             jobs=2, executor="local")
        book.record(run, "alice", "graded", "k1", 8.0, 10.0, problems=1, graded_at="2025-01-01T00:00:00+00:00",
                    detail="resnet.py could not be imported")
        book.record(run, "bob", "failed", "k2", detail="worker died")
        book.finish_run(run, "finished", 12.5)
        abandoned = book.start_run(assignment="mini", suite_key="s1" * 32, grader_version="0.1.0", command="",
                                   jobs=1, executor="local")
    with Gradebook.for_output(tmp_path) as book:      # a later run, under the folder's lock
        assert book.mark_abandoned() == 1
        runs = book.runs()
        assert [(r.id, r.status, r.graded, r.kept, r.failed) for r in runs] == [
            (run, "finished", 1, 0, 1), (abandoned, "interrupted", 0, 0, 0)]
        assert runs[0].user == current_user() and runs[0].wall_s == 12.5 and runs[0].command == "grader run x"
        [alice] = book.history("alice")
        assert (alice.score, alice.max_score, alice.problems, alice.suite_key) == (8.0, 10.0, 1, "s1" * 32)
        assert book.students() == ["alice", "bob"]


def test_a_file_that_is_not_a_gradebook(tmp_path):
    (tmp_path / GRADEBOOK_FILE).write_text("hello, not sqlite" * 100)
    with pytest.raises(GradebookError, match="not a usable gradebook"):
        Gradebook.for_output(tmp_path)


def test_every_run_is_recorded_and_history_shows_the_change(tmp_path, capsys):
    spec = load_spec(MINICOURSE)
    for sid, code in (("alice", REFERENCE), ("bob", HALF)):
        (tmp_path / "subs" / sid).mkdir(parents=True)
        (tmp_path / "subs" / sid / "blocks.py").write_text(code)
    subs = [tmp_path / "subs" / "alice", tmp_path / "subs" / "bob"]
    out = tmp_path / "out"
    first = grade_class(spec, subs, out, jobs=1, command="grader run subs/*")
    (tmp_path / "subs" / "bob" / "blocks.py").write_text(REFERENCE)    # bob resubmits, fixed
    second = grade_class(spec, subs, out, jobs=1)
    with Gradebook.for_output(out, readonly=True) as book:
        runs = book.runs()
        assert [r.id for r in runs] == [first.run_id, second.run_id]
        assert [(r.graded, r.kept, r.status) for r in runs] == [(2, 0, "finished"), (1, 1, "finished")]
        assert runs[0].suite_key == first.suite_key and runs[0].command == "grader run subs/*"
        bob = book.history("bob")
        assert [(g.status, g.score) for g in bob] == [("graded", 8.0), ("graded", 10.0)]
        assert [g.status for g in book.history("alice")] == ["graded", "kept"]
        rows = sqlite3.connect(out / GRADEBOOK_FILE).execute("SELECT COUNT(*) FROM grades").fetchone()[0]
        assert rows == 4

    assert cli(["history", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["run", "started", "by"]
    assert len(table) == 3 and table[1].split()[-1] == "finished" and current_user() in table[1]

    assert cli(["history", str(out), "bob"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"bob in {out}"
    assert "8/10" in lines[2] and "10/10" in lines[3] and "+2" in lines[3]

    assert cli(["history", str(out), "bob", "--json"]) == 0
    assert [g["score"] for g in json.loads(capsys.readouterr().out)] == [8.0, 10.0]


def test_history_usage_errors(tmp_path, capsys):
    assert cli(["history", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert cli(["history", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no gradebook" in err and err.count("\n") == 1
    with Gradebook.for_output(tmp_path) as book:
        book.record(book.start_run(assignment="mini", suite_key="s", grader_version="v", command="", jobs=1,
                                   executor="local"), "alice", "kept", "k", 1.0, 2.0)
    assert cli(["history", str(tmp_path), "zed"]) == 2
    assert "no grades for 'zed'" in capsys.readouterr().err
