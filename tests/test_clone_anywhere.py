"""The project works wherever it is cloned: a fresh clone under /tmp, in a folder whose name has a space.

The sandbox replaces /tmp (and /dev/shm and the work folder) with private
folders; a virtual environment under one of them must still be visible to the
worker. This clones the committed HEAD, runs the README's first command
(``bash scripts/demo.sh``: set-up, then the demo class graded), and checks that
every student was graded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A fresh clone sets itself up (a new .venv, pip from local disk) before grading: minutes on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def test_a_clone_under_tmp_grades_the_demo_class(tmp_path: Path) -> None:
    assert str(tmp_path).startswith("/tmp/"), tmp_path
    clone = tmp_path / "a clone" / "grader"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    try:
        run = subprocess.run(["bash", "scripts/demo.sh"], cwd=clone, capture_output=True, text=True, timeout=3300)
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-4000:]
        assert "NOT graded" not in output, output[-4000:]
        students = sorted(p.name for p in (clone / "submissions").iterdir() if p.is_dir())
        assert students
        for student in students:
            results = json.loads((clone / "out" / student / "results.json").read_text())
            assert results["tests"] and isinstance(results["score"], (int, float)), student
            assert any(t["score"] > 0 for t in results["tests"]), student
        assert (clone / "out" / "class-report.html").is_file()
    finally:
        shutil.rmtree(clone, ignore_errors=True)
