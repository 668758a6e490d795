"""Reading a submission folder into the files the worker receives, with limits.

Only regular files travel: symbolic links (to files or folders), FIFOs, device
files, sockets, names that are not valid UTF-8 and anything past the depth,
count or size limits are left out and reported, never followed or opened for
reading. Each file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again
on the open descriptor, so a file swapped for a link or a FIFO after the folder
was listed is refused too, and nothing can make the grader block on a read.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from grader.intake.notebook.model import NotebookReport
from grader.intake.notebook.take import NotebookRules, take_notebooks
from grader.results import Problem

MAX_DEPTH = 6
MAX_FILES = 400
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 40 * 1024 * 1024
SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass
class Intake:
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notebook: NotebookReport | None = None   # how the submission's notebooks were read, when it has any


def shown(name: str) -> str:
    """A file name as it may be printed: control characters and undecodable bytes as ``\\xNN``."""
    def escape(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(escape, name)


def _valid_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not _UNSAFE.search(rel)


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file (None if it is not one once opened); never follows a link or blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_big(rel: str) -> str:
    hint = "; clear its outputs in Jupyter and hand it in again" if rel.lower().endswith(".ipynb") else ""
    return f"{shown(rel)} (over the size or file-count limit{hint})"


def read_submission(folder: Path, expected: list[str], notebooks: NotebookRules | None = None) -> Intake:
    """The submission's files; with ``notebooks``, the expected files it lacks are taken from its notebooks."""
    intake = Intake()
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() and not folder.is_symlink() else "is not a folder"
        intake.problems.append(Problem(kind="bad_input",
                                       message=f"{shown(folder.name)} {what}; nothing could be graded"))
        for name in expected:
            intake.problems.append(Problem(file=name, kind="missing", message=f"{name} is missing; its tests score 0"))
        return intake
    total = 0
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        rel_dir = Path(dirpath).relative_to(folder)
        if len(rel_dir.parts) >= MAX_DEPTH:
            skipped.append(f"{shown(str(rel_dir))}/ (nested deeper than {MAX_DEPTH} folders)")
            dirnames[:] = []
            continue
        kept = []
        for d in sorted(dirnames):
            rel = str(rel_dir / d) if rel_dir.parts else d
            if d in SKIP_DIRS:
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                skipped.append(f"{shown(rel)}/ (a symbolic link to a folder; links are never followed)")
            elif not _valid_name(rel):
                skipped.append(f"{shown(rel)}/ (the folder name is not valid UTF-8 text or holds control characters)")
            else:
                kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = str(rel_dir / name) if rel_dir.parts else name
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                skipped.append(f"{shown(rel)} (a symbolic link; links are never followed)")
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append(f"{shown(rel)} (not a regular file)")
                continue
            if not _valid_name(rel):
                skipped.append(f"{shown(rel)} (the file name is not valid UTF-8 text or holds control characters)")
                continue
            if name.endswith((".pyc", ".pyo")):
                continue
            if st.st_size > MAX_FILE_BYTES or total + st.st_size > MAX_TOTAL_BYTES or len(intake.files) >= MAX_FILES:
                skipped.append(_too_big(rel))
                continue
            try:
                data = _read_regular(path, MAX_FILE_BYTES)
            except OSError as e:
                skipped.append(f"{shown(rel)} (could not be read: {e.strerror})")
                continue
            if data is None:
                skipped.append(f"{shown(rel)} (not a regular file)")
                continue
            if len(data) > MAX_FILE_BYTES or total + len(data) > MAX_TOTAL_BYTES:
                skipped.append(_too_big(rel))
                continue
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
    missing_why: dict[str, str] = {}
    if notebooks is not None:
        taken = take_notebooks(intake.files, expected, notebooks)
        intake.files.update(taken.files)
        intake.problems += taken.problems
        intake.notebook = taken.report
        missing_why = taken.missing_why
    for name in expected:
        if name not in intake.files:
            why = f" and {missing_why[name]}" if missing_why.get(name) else ""
            intake.problems.append(Problem(file=name, kind="missing", message=f"{name} is missing{why}; its tests score 0"))
    return intake
