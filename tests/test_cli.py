"""`grader --help` and every subcommand's help are useful; bad usage is one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader.cli import build_parser


def grader(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=120)


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_top_level_help_lists_every_subcommand():
    out = grader("--help")
    assert out.returncode == 0
    for name in subcommands():
        assert name in out.stdout
    assert {"run", "report", "skeleton", "release"} <= set(subcommands())


@pytest.mark.parametrize("name", subcommands())
def test_each_subcommand_has_help(name):
    out = grader(name, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: grader " + name in out.stdout
    assert len(out.stdout.splitlines()) >= 4


def test_run_on_a_missing_folder_is_one_line_and_nonzero(tmp_path):
    out = grader("run", str(tmp_path / "nobody"), "--out", str(tmp_path / "out"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no such submission" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_assignment_is_one_line_and_nonzero(tmp_path):
    (tmp_path / "alice").mkdir()
    out = grader("run", str(tmp_path / "alice"), "--assignment", "day99", "--out", str(tmp_path / "out"))
    assert out.returncode == 2
    assert "unknown assignment 'day99'" in out.stderr and "Traceback" not in out.stderr


def test_no_command_prints_help_and_fails():
    out = grader()
    assert out.returncode == 2 and "usage: grader" in out.stdout
