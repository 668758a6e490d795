"""CLI habits: short flags, a closed pipe, refused runs leave nothing, and quick empty submissions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from resultfactory import make_result

from grader import cli
from grader.cli import EXIT_CLOSED_PIPE, build_parser
from grader.classrun.gradebook import Gradebook
from grader.results import LmsIdentity, save

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"
REFERENCE = (MINICOURSE / "reference" / "blocks.py").read_text()
ENV = {**os.environ, "GRADER_COURSES": str(MINICOURSE.parent)}


def grader(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=300,
                          env=ENV, **kw)


# ---------------------------------------------------------------- short flags


@pytest.mark.parametrize("short, long", [
    (["run", "s", "-o", "x", "-j", "2", "-q", "-f", "-a", "mini"],
     ["run", "s", "--out", "x", "--jobs", "2", "--quiet", "--force", "--assignment", "mini"]),
    (["run", "s", "-v"], ["run", "s", "--verbose"]),
    (["export", "csv", "d", "-o", "-"], ["export", "csv", "d", "--out", "-"]),
    (["export", "json", "d", "-o", "f"], ["export", "json", "d", "--out", "f"]),
    (["export", "canvas", "d", "-o", "f"], ["export", "canvas", "d", "--out", "f"]),
    (["export", "moodle", "d", "-o", "f"], ["export", "moodle", "d", "--out", "f"]),
    (["export", "gradescope", "-o", "a.zip", "-a", "mini"], ["export", "gradescope", "--out", "a.zip", "--assignment", "mini"]),
    (["release", "-o", "r", "-a", "mini"], ["release", "--out", "r", "--assignment", "mini"]),
    (["audit", "-q", "-a", "mini"], ["audit", "--quiet", "--assignment", "mini"]),
    (["skeleton", "-a", "mini"], ["skeleton", "--assignment", "mini"]),
])
def test_short_flags_mean_what_the_long_ones_do(short, long):
    parser = build_parser()
    as_short, as_long = vars(parser.parse_args(short)), vars(parser.parse_args(long))
    assert as_short == as_long


def test_verbose_and_quiet_together_is_a_usage_error(tmp_path):
    proc = grader("run", str(tmp_path), "-q", "-v")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


# ---------------------------------------------------------------- a closed pipe


@pytest.fixture
def graded_class(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    for i in range(30):
        save(make_result(f"student-{i:02d}", seed=i), out / f"student-{i:02d}")
    with Gradebook.for_output(out) as book:
        for _ in range(200):
            run = book.start_run(assignment="mini", suite_key="k" * 64, grader_version="0", command="grader run",
                                 jobs=1, executor="local")
            book.record(run, "student-00", "graded", "k", 7.5, 10)
    return out


@pytest.mark.parametrize("argv", [
    ["history", "{out}", "--json"],
    ["history", "{out}", "student-00"],
    ["export", "csv", "{out}", "-o", "-"],
    ["export", "json", "{out}"],
    ["run", "--help"],
])
def test_a_reader_that_went_away_gets_no_traceback(graded_class, argv):
    read_end, write_end = os.pipe()
    os.close(read_end)   # like `grader ... | head` once head has exited
    try:
        proc = subprocess.run([sys.executable, "-m", "grader", *(a.format(out=graded_class) for a in argv)],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300, env=ENV)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, EXIT_CLOSED_PIPE)


def test_history_into_head(graded_class):
    proc = subprocess.run(f"{sys.executable} -m grader history '{graded_class}' --json | head -n 2", shell=True,
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.stdout.splitlines() == ["[", " {"] and proc.stderr == ""


# ---------------------------------------------------------------- refused runs leave nothing


def _student(folder: Path, name: str, text: str = REFERENCE) -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "blocks.py").write_text(text)
    return folder / name


@pytest.mark.parametrize("case", ["missing", "unknown-assignment", "not-a-submission", "duplicate-ids",
                                  "pattern-mismatch", "bad-jobs"])
@pytest.mark.parametrize("out_exists", [False, True])
def test_a_refused_run_writes_nothing(tmp_path, monkeypatch, capsys, case, out_exists):
    subs = tmp_path / "subs"
    alice = _student(subs, "alice")
    (subs / "notes.txt").parent.mkdir(parents=True, exist_ok=True)
    (subs / "notes.txt").write_text("x")
    _student(tmp_path / "other", "alice")
    args = {
        "missing": [str(tmp_path / "nobody")],
        "unknown-assignment": [str(alice), "-a", "day99"],
        "not-a-submission": [str(subs / "notes.txt")],
        "duplicate-ids": [str(alice), str(tmp_path / "other" / "alice")],
        "pattern-mismatch": [str(alice), "--id-pattern", "^s\\d+_(?P<id>.+)$"],
        "bad-jobs": [str(alice), "-j", "0"],
    }[case]
    out = tmp_path / "out" / "deep"
    if out_exists:
        out.mkdir(parents=True)
    monkeypatch.setenv("GRADER_COURSES", str(MINICOURSE.parent))
    code = cli.main(["run", *args, "-o", str(out), *(["-a", "minicourse"] if "-a" not in args else [])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    if out_exists:
        assert list(out.iterdir()) == []
    else:
        assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- empty submissions, other files


def test_empty_and_ungradable_submissions_are_quick_and_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes-only").mkdir()
    (tmp_path / "notes-only" / "notes.txt").write_text("I ran out of time\n")
    (tmp_path / "notes-only" / "draft.py").write_text("x = 1\n")
    out = tmp_path / "out"
    started = time.monotonic()
    proc = grader("run", str(tmp_path / "empty"), str(tmp_path / "notes-only"), "-o", str(out), "-a", "minicourse")
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert "empty: empty" in last
    assert "files that are not the assignment's: notes-only (draft.py, notes.txt)" in last
    for student, why in (("empty", "the submission folder is empty"), ("notes-only", "blocks.py is missing")):
        result = json.loads((out / student / "results.json").read_text(encoding="utf-8"))
        assert result["score"] == 0 and result["max_score"] == 10
        assert result["output"].startswith("Score: 0 / 10 points.") and why in result["output"]
        assert (out / student / "report.html").is_file()
    assert took < 60   # no sandbox, no suite: what remains is starting Python and importing torch once
    # the same command again keeps both
    again = grader("run", str(tmp_path / "empty"), str(tmp_path / "notes-only"), "-o", str(out), "-a", "minicourse")
    assert "graded 0, kept 2 unchanged" in again.stdout.splitlines()[-1]


def test_lms_ids_of_a_kept_result_follow_the_download(tmp_path):
    bulk = tmp_path / "bulk"
    _student(bulk, "Dave Smith_67890_assignsubmission_file_", "")
    _student(bulk, "Eve Adams_67891_assignsubmission_file_", "")
    out = tmp_path / "out"
    proc = grader("run", str(bulk), "-o", str(out), "-a", "minicourse", "-q")
    assert proc.returncode == 0, proc.stderr
    graded = json.loads((out / "Dave-Smith" / "grading.json").read_text(encoding="utf-8"))
    assert LmsIdentity.model_validate(graded["lms"]) == LmsIdentity(system="moodle", ids={"participant": "67890"},
                                                                    name="Dave Smith")
    assert grader("export", "moodle", str(out), "-o", "-").stdout.splitlines()[1].startswith("Participant 67890,")
