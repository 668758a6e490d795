"""Reading submission folders: only regular files travel, everything else is reported and never followed."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from grader.intake import submission as intake
from grader.intake.submission import read_submission


def messages(result: intake.Intake) -> str:
    return "\n".join(f"{p.kind}|{p.file}|{p.message}|{p.detail}" for p in result.problems)


def test_regular_files_travel(tmp_path: Path) -> None:
    (tmp_path / "blocks.py").write_text("x = 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "weights.bin").write_bytes(b"\0\1")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "blocks.cpython-311.pyc").write_bytes(b"junk")
    (tmp_path / "old.pyc").write_bytes(b"junk")
    result = read_submission(tmp_path, ["blocks.py"])
    assert result.files == {"blocks.py": b"x = 1\n", "data/weights.bin": b"\0\1"}
    assert result.problems == []


def test_links_are_reported_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "reference.py").write_text("SECRET = 1\n")
    sub = tmp_path / "alice"
    sub.mkdir()
    (sub / "blocks.py").symlink_to(outside / "reference.py")
    (sub / "passwd").symlink_to("/etc/passwd")
    (sub / "inner.py").write_text("y = 2\n")
    (sub / "same.py").symlink_to(sub / "inner.py")  # even a link inside the folder is not followed
    (sub / "lib").symlink_to(outside)
    (sub / "dangling").symlink_to(tmp_path / "nowhere")
    result = read_submission(sub, ["blocks.py"])
    assert result.files == {"inner.py": b"y = 2\n"}
    text = messages(result)
    for name in ("blocks.py (a symbolic link", "passwd (a symbolic link", "same.py (a symbolic link",
                 "lib/ (a symbolic link to a folder", "dangling (a symbolic link"):
        assert name in text, text
    assert "missing|blocks.py|blocks.py is missing" in text
    assert all(b"SECRET" not in data for data in result.files.values())


def test_fifo_socket_and_nesting_do_not_block(tmp_path: Path) -> None:
    (tmp_path / "blocks.py").write_text("x = 1\n")
    os.mkfifo(tmp_path / "fifo.py")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "sock"))
    s.close()
    deep = tmp_path.joinpath(*[f"d{i}" for i in range(30)])
    deep.mkdir(parents=True)
    (deep / "hidden.py").write_text("z = 3\n")
    started = time.monotonic()
    result = read_submission(tmp_path, ["blocks.py"])
    assert time.monotonic() - started < 2
    assert set(result.files) == {"blocks.py"}
    text = messages(result)
    assert "fifo.py (not a regular file)" in text and "sock (not a regular file)" in text
    assert f"nested deeper than {intake.MAX_DEPTH} folders" in text


def test_reading_refuses_a_file_swapped_for_a_link_or_fifo(tmp_path: Path) -> None:
    """The checks are repeated on the open descriptor: a listing that went stale cannot trick the read."""
    os.mkfifo(tmp_path / "fifo")
    assert intake._read_regular(tmp_path / "fifo", 100) is None
    (tmp_path / "link").symlink_to("/etc/passwd")
    with pytest.raises(OSError):
        intake._read_regular(tmp_path / "link", 100)


def test_bad_names_and_bad_text(tmp_path: Path) -> None:
    (tmp_path / "blocks.py").write_bytes(b"# caf\xe9\nx = 1\n")
    (tmp_path / os.fsdecode(b"\xff\xfe.py")).write_bytes(b"x = 1\n")
    (tmp_path / "esc\x1b[31m.py").write_text("x = 1\n")
    (tmp_path / "naïve.py").write_text("x = 1\n")  # valid UTF-8 is fine
    result = read_submission(tmp_path, ["blocks.py"])
    assert set(result.files) == {"blocks.py", "naïve.py"}
    text = messages(result)
    assert "blocks.py is not valid UTF-8 text (byte 5)" in text
    assert "\\xff\\xfe.py (the file name is not valid UTF-8" in text
    assert "esc\\x1b[31m.py (the file name" in text
    assert "\x1b" not in text and "\udcff" not in text


def test_size_and_count_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(intake, "MAX_TOTAL_BYTES", 250)
    monkeypatch.setattr(intake, "MAX_FILES", 3)
    (tmp_path / "big.bin").write_bytes(b"x" * 101)
    for name in ("a.py", "b.py", "c.py", "d.py"):
        (tmp_path / name).write_bytes(b"y" * 90)
    result = read_submission(tmp_path, [])
    assert set(result.files) == {"a.py", "b.py"}  # c.py would pass 250 bytes in all
    text = messages(result)
    assert "big.bin (over the size" in text and "c.py (over the size" in text and "d.py (over the size" in text


def test_not_a_folder_missing_and_empty(tmp_path: Path) -> None:
    a_file = tmp_path / "alice.py"
    a_file.write_text("x = 1\n")
    result = read_submission(a_file, ["blocks.py"])
    assert result.files == {}
    assert "alice.py is not a folder; nothing could be graded" in messages(result)
    assert "missing|blocks.py" in messages(result)
    result = read_submission(tmp_path / "nobody", ["blocks.py"])
    assert "nobody does not exist" in messages(result)
    (tmp_path / "empty").mkdir()
    result = read_submission(tmp_path / "empty", ["blocks.py"])
    assert "the submission folder is empty" in messages(result)
