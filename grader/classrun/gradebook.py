"""The gradebook: every class run and every student's score in it, in ``DIR/gradebook.sqlite``.

Results files hold the latest grade; the gradebook keeps the history: who ran
the grader, when, with which suite (its content key) and grader version, and
what each student got, so an instructor can see how a grade changed and why
(a new submission, or a changed suite). Only the parent process of a run
writes to it, one row per student as each one finishes.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

GRADEBOOK_FILE = "gradebook.sqlite"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at     TEXT NOT NULL,          -- UTC, ISO 8601
    finished_at    TEXT,
    user           TEXT NOT NULL,
    host           TEXT NOT NULL,
    assignment     TEXT NOT NULL,
    suite_key      TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    command        TEXT NOT NULL,
    jobs           INTEGER NOT NULL,
    executor       TEXT NOT NULL,
    status         TEXT NOT NULL,          -- running, finished, interrupted
    graded         INTEGER NOT NULL DEFAULT 0,
    kept           INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    wall_s         REAL
);
CREATE TABLE IF NOT EXISTS grades (
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    student     TEXT NOT NULL,
    status      TEXT NOT NULL,             -- graded, kept, failed
    key         TEXT NOT NULL,
    score       REAL,
    max_score   REAL,
    problems    INTEGER NOT NULL DEFAULT 0,
    graded_at   TEXT,
    detail      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, student)
);
CREATE INDEX IF NOT EXISTS grades_by_student ON grades(student, run_id);
"""


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without passwd entry)
        return "unknown"


@dataclass(frozen=True)
class Run:
    id: int
    started_at: str
    finished_at: str | None
    user: str
    host: str
    assignment: str
    suite_key: str
    grader_version: str
    command: str
    jobs: int
    executor: str
    status: str
    graded: int
    kept: int
    failed: int
    wall_s: float | None


@dataclass(frozen=True)
class Grade:
    run_id: int
    student: str
    status: str
    key: str
    score: float | None
    max_score: float | None
    problems: int
    graded_at: str | None
    detail: str
    # from the run
    started_at: str
    user: str
    suite_key: str
    grader_version: str


class GradebookError(Exception):
    """The gradebook cannot be opened or read; the message says which file and why."""


class Gradebook:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            if readonly:
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            else:
                self.db = sqlite3.connect(self.path, timeout=30)
                self.db.executescript(SCHEMA)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self.db.commit()
            self.db.row_factory = sqlite3.Row
            self.db.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
        except sqlite3.Error as e:
            raise GradebookError(f"{self.path}: not a usable gradebook: {e}") from None

    @classmethod
    def for_output(cls, out: Path, readonly: bool = False) -> "Gradebook":
        return cls(Path(out) / GRADEBOOK_FILE, readonly=readonly)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # writing (the parent of a run only, under the output folder's lock) ---------
    def mark_abandoned(self) -> int:
        """Runs still marked running were killed: the caller holds the lock, so none is running now."""
        with self.db:
            return self.db.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'").rowcount

    def start_run(self, *, assignment: str, suite_key: str, grader_version: str, command: str, jobs: int,
                  executor: str) -> int:
        with self.db:
            cur = self.db.execute(
                "INSERT INTO runs (started_at, user, host, assignment, suite_key, grader_version, command, jobs, "
                "executor, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
                (now_utc(), current_user(), socket.gethostname(), assignment, suite_key, grader_version, command,
                 jobs, executor))
            return int(cur.lastrowid)

    def record(self, run_id: int, student: str, status: str, key: str, score: float | None = None,
               max_score: float | None = None, problems: int = 0, graded_at: str | None = None,
               detail: str = "") -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO grades (run_id, student, status, key, score, max_score, problems, graded_at, "
                "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, student, status, key, score, max_score, problems, graded_at, detail[:2000]))

    def finish_run(self, run_id: int, status: str, wall_s: float) -> None:
        with self.db:
            self.db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, wall_s = ?, "
                "graded = (SELECT COUNT(*) FROM grades WHERE run_id = ? AND status = 'graded'), "
                "kept = (SELECT COUNT(*) FROM grades WHERE run_id = ? AND status = 'kept'), "
                "failed = (SELECT COUNT(*) FROM grades WHERE run_id = ? AND status = 'failed') WHERE id = ?",
                (now_utc(), status, round(wall_s, 3), run_id, run_id, run_id, run_id))

    # reading ------------------------------------------------------------------
    def runs(self) -> list[Run]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [Run(**dict(r)) for r in rows]

    def history(self, student: str) -> list[Grade]:
        rows = self.db.execute(
            "SELECT g.run_id, g.student, g.status, g.key, g.score, g.max_score, g.problems, g.graded_at, g.detail, "
            "r.started_at, r.user, r.suite_key, r.grader_version FROM grades g JOIN runs r ON r.id = g.run_id "
            "WHERE g.student = ? ORDER BY g.run_id", (student,)).fetchall()
        return [Grade(**dict(r)) for r in rows]

    def students(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT student FROM grades ORDER BY student")]
