"""Reading a submission folder into the files the worker receives, with limits.

Only regular files travel: symlinks, device files, sockets and anything past
the depth, count or size limits are left out and reported, never followed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from grader.results import Problem

MAX_DEPTH = 6
MAX_FILES = 400
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 40 * 1024 * 1024
SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}


@dataclass
class Intake:
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def read_submission(folder: Path, expected: list[str]) -> Intake:
    intake = Intake()
    folder = Path(folder)
    if not folder.is_dir():
        intake.problems.append(Problem(kind="bad_input", message=f"{folder.name} is not a folder; nothing could be graded"))
        return intake
    total = 0
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        rel_dir = Path(dirpath).relative_to(folder)
        if len(rel_dir.parts) >= MAX_DEPTH:
            skipped.append(f"{rel_dir}/ (nested deeper than {MAX_DEPTH} folders)")
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = str(rel_dir / name) if rel_dir.parts else name
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                skipped.append(f"{rel} (a symbolic link; links are never followed)")
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append(f"{rel} (not a regular file)")
                continue
            if name.endswith((".pyc", ".pyo")):
                continue
            if st.st_size > MAX_FILE_BYTES or total + st.st_size > MAX_TOTAL_BYTES or len(intake.files) >= MAX_FILES:
                skipped.append(f"{rel} (over the size or file-count limit)")
                continue
            data = path.read_bytes()
            total += len(data)
            intake.files[rel] = data
    if skipped:
        intake.problems.append(Problem(kind="bad_input", message=f"{len(skipped)} item(s) were left out of grading",
                                       detail="\n".join(skipped[:50])))
    for rel, data in intake.files.items():
        if rel.endswith(".py"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as e:
                intake.problems.append(Problem(file=rel, kind="bad_input",
                                               message=f"{rel} is not valid UTF-8 text (byte {e.start}); save it as UTF-8"))
    if not intake.files:
        intake.problems.append(Problem(kind="bad_input", message="the submission folder is empty"))
    for name in expected:
        if name not in intake.files:
            intake.problems.append(Problem(file=name, kind="missing", message=f"{name} is missing; its tests score 0"))
    return intake
