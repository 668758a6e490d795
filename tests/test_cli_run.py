"""``grader run`` from the command line: usage errors, zips, --json, --quiet, the lock, progress output."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.classrun.lock import OutputLock
from grader.classrun.progress import LineLog, LiveBar, for_stream
from grader.classrun.summary import StudentOutcome, Summary, clock, summary_table

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"
REFERENCE = (MINICOURSE / "reference" / "blocks.py").read_text()


def grader(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADER_COURSES": str(MINICOURSE.parent)}
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and text in proc.stderr, proc.stderr


def test_usage_errors_are_one_line(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "blocks.py").write_text(REFERENCE)
    (tmp_path / "notes.txt").write_text("x")
    out = str(tmp_path / "out")
    one_line_error(grader("run", str(tmp_path / "nobody"), "--out", out), "no such submission")
    one_line_error(grader("run", str(tmp_path / "alice"), "--assignment", "day99", "--out", out),
                   "unknown assignment 'day99'")
    one_line_error(grader("run", str(tmp_path / "alice"), "--jobs", "0", "--out", out), "--jobs must be at least 1")
    one_line_error(grader("run", str(tmp_path / "alice"), "--executor", "nope", "--out", out), "unknown executor 'nope'")
    one_line_error(grader("run", str(tmp_path / "alice"), "--id-pattern", "(", "--out", out),
                   "not a valid regular expression")
    one_line_error(grader("run", str(tmp_path / "notes.txt"), "--assignment", "minicourse", "--out", out),
                   "not a folder or a .zip file")
    assert not (tmp_path / "out" / "alice").exists()


def test_a_second_run_on_a_busy_folder_is_refused(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "blocks.py").write_text(REFERENCE)
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out):
        proc = grader("run", str(tmp_path / "alice"), "--assignment", "minicourse", "--out", str(out))
    one_line_error(proc, "is being graded by another run")
    assert f"pid {os.getpid()}" in proc.stderr


def _bomb(path: Path) -> None:
    """A zip whose header declares 3 GB for a small member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("blocks.py", REFERENCE)
        zf.writestr("zeros.bin", b"\0" * 1000)
    data = bytearray(buf.getvalue())
    central = [i for i in range(len(data) - 3) if data[i:i + 4] == b"PK\x01\x02"][1]
    struct.pack_into("<I", data, central + 24, 3_000_000_000)
    path.write_bytes(bytes(data))


def test_folders_zips_and_a_bomb_in_one_run_then_json_quiet_and_table(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "blocks.py").write_text(REFERENCE)
    with zipfile.ZipFile(tmp_path / "bob_12345_67890_day09.zip", "w") as zf:
        zf.writestr("day09/blocks.py", REFERENCE)
    _bomb(tmp_path / "mallory.zip")
    subs = [str(tmp_path / "alice"), str(tmp_path / "bob_12345_67890_day09.zip"), str(tmp_path / "mallory.zip")]
    out = tmp_path / "out"

    proc = grader("run", *subs, "--assignment", "minicourse", "--out", str(out), "--json", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)                    # one JSON object and nothing else on stdout
    assert proc.stdout.count("\n") == 1
    assert (summary["graded"], summary["kept"], summary["failed"]) == (3, 0, 0)
    students = {s["student"]: s for s in summary["students"]}
    assert set(students) == {"alice", "bob", "mallory"}
    assert students["alice"]["score"] == students["bob"]["score"] == 10
    assert students["mallory"]["score"] == 0 and students["mallory"]["problems"] >= 1
    assert "zip bomb" in students["mallory"]["note"]
    mallory = json.loads((out / "mallory" / "grading.json").read_text())
    assert "mallory.zip was not unpacked" in mallory["problems"][0]["message"]
    assert "mallory.zip was not unpacked" in (out / "mallory" / "report.html").read_text()
    assert json.loads((out / "mallory" / "results.json").read_text())["score"] == 0
    assert not list(out.glob(".ingest*"))
    assert proc.stderr == ""                             # --json and no terminal: no progress lines

    table = grader("run", *subs, "--assignment", "minicourse", "--out", str(out))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["student", "score", "%", "status", "time", "note"]
    assert [line.split()[0] for line in lines[1:4]] == ["alice", "bob", "mallory"]
    assert all(line.split()[3] == "kept" for line in lines[1:4])
    assert lines[-1].startswith("graded 0, kept 3 unchanged, not graded 0 of 3")

    quiet = grader("run", *subs, "--assignment", "minicourse", "--out", str(out), "--quiet", "--force", "--jobs", "1")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", quiet.stderr
    assert json.loads((out / "alice" / "results.json").read_text())["score"] == 10


def test_json_and_quiet_cannot_be_combined(tmp_path):
    proc = grader("run", str(tmp_path), "--json", "--quiet")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


# --- progress output ----------------------------------------------------------------

class FakeTerminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def _outcome(sid: str, status: str = "graded", score: float = 8, problems: int = 0) -> StudentOutcome:
    return StudentOutcome(student=sid, status=status, score=None if status == "failed" else score,
                          max_score=None if status == "failed" else 10, problems=problems,
                          error="its grading process ended" if status == "failed" else "", execution_time=2.5)


def test_live_bar_on_a_terminal_and_lines_elsewhere():
    tty = FakeTerminal()
    assert isinstance(for_stream(tty), LiveBar) and isinstance(for_stream(io.StringIO()), LineLog)
    assert type(for_stream(tty, quiet=True)).__name__ == "Progress"
    assert type(for_stream(io.StringIO(), machine=True)).__name__ == "Progress"
    bar = for_stream(tty)
    bar.start(total=4, kept=1, jobs=2, assignment="mini")
    bar.finished(_outcome("alice"))
    bar.finished(_outcome("bob", "failed"))
    bar.finished(_outcome("carol", problems=2))
    text = tty.getvalue()
    assert "\r\x1b[2K" in text
    last = text.split("\r\x1b[2K")[-1]
    assert "3/4" in last and "elapsed" in last and "ETA " in last and "ETA --:--" not in last
    assert "1 NOT graded" in last and "1 with problems" in last and "1 kept" in last
    bar.close()
    assert tty.getvalue().endswith("\r\x1b[2K")

    log = io.StringIO()
    lines = LineLog(log)
    lines.start(total=2, kept=0, jobs=1, assignment="mini")
    lines.finished(_outcome("alice"))
    lines.finished(_outcome("bob", "failed"))
    assert log.getvalue().splitlines()[1:] == ["[1/2] alice: 8/10", "[2/2] bob: NOT graded: its grading process ended"]


def test_summary_table_and_clock():
    summary = Summary(assignment="mini", out=Path("out"), suite_key="s", executor="local", jobs=2, wall_s=75,
                      students=[_outcome("bob", "failed"), _outcome("alice"), _outcome("carol", "kept", 10)])
    lines = summary_table(summary)
    assert [line.split()[0] for line in lines[1:4]] == ["alice", "bob", "carol"]
    assert "NOT graded" in lines[2] and "its grading process ended" in lines[2]
    assert lines[-1].startswith("graded 1, kept 1 unchanged, not graded 1 of 3 in 1:15 (2 worker(s))")
    assert "run the same command again" in lines[-1] and summary.exit_code == 1
    assert clock(3725) == "1:02:05" and clock(None) == "--:--"


@pytest.mark.parametrize("name", ["run", "history"])
def test_help_mentions_the_new_options(name):
    proc = grader(name, "--help")
    assert proc.returncode == 0
    if name == "run":
        for option in ("--json", "--quiet", "--id-pattern", "--executor", "--force", "--jobs"):
            assert option in proc.stdout
