"""What a person watching a class run sees: a live bar on a terminal, one line per student elsewhere.

Written with plain ANSI (``\\r`` and erase-line) on stderr, so stdout stays for
the summary table or the ``--json`` object.
"""

from __future__ import annotations

import shutil
import time
from typing import IO, TYPE_CHECKING

from grader.points import percent_text, points_text

if TYPE_CHECKING:
    from grader.classrun import StudentOutcome, Summary


def clock(seconds: float | None) -> str:
    """``1:05`` or ``1:02:03``; ``--:--`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def score_text(score: float | None, max_score: float | None) -> str:
    if score is None or max_score is None:
        return "-"
    return f"{points_text(score)}/{points_text(max_score)}"


class Progress:
    """Told about a run as it goes; shows nothing."""

    def start(self, total: int, kept: int, jobs: int, assignment: str, gpu: bool = False) -> None:
        self.total, self.kept, self.jobs, self.assignment, self.gpu = total, kept, jobs, assignment, gpu
        self.done = self.failed = self.with_problems = 0
        self.started = time.monotonic()
        self.first_done: float | None = None

    def finished(self, outcome: "StudentOutcome") -> None:
        self.done += 1
        self.failed += outcome.status == "failed"
        self.with_problems += bool(outcome.problems)
        if self.first_done is None:
            self.first_done = time.monotonic()

    def tick(self) -> None:
        """Called a few times a second while waiting."""

    def close(self) -> None:
        """The run ended (or was interrupted)."""

    def eta(self) -> float | None:
        left = self.total - self.done
        if left <= 0:
            return 0.0
        if self.done >= 2 and self.first_done is not None:
            per = (time.monotonic() - self.first_done) / (self.done - 1)
        elif self.done == 1:
            per = time.monotonic() - self.started
        else:
            return None
        return per * left   # per: the time between two finished submissions, all workers together


class LineLog(Progress):
    """One line per finished student: for logs and pipes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def start(self, total: int, kept: int, jobs: int, assignment: str, gpu: bool = False) -> None:
        super().start(total, kept, jobs, assignment, gpu)
        kept_text = f" ({kept} unchanged, kept)" if kept else ""
        device = "the GPU: GPU checks run" if gpu else "no GPU: GPU checks are skipped"
        print(f"grading {total} submission(s) of {assignment} with {jobs} worker(s) and {device}{kept_text}",
              file=self.stream, flush=True)

    def finished(self, outcome: "StudentOutcome") -> None:
        super().finished(outcome)
        width = len(str(self.total))
        if outcome.status == "failed":
            what = f"NOT graded: {outcome.error}"
        else:
            what = score_text(outcome.score, outcome.max_score)
            if outcome.problems:
                what += f" ({outcome.problems} problem(s))"
        print(f"[{self.done:>{width}}/{self.total}] {outcome.student}: {what}", file=self.stream, flush=True)


class LiveBar(Progress):
    """A bar redrawn in place on a terminal: graded/total, elapsed, ETA, failures."""

    REDRAW_S = 0.2

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        encoding = (getattr(stream, "encoding", None) or "").lower()
        self.fill, self.empty = ("█", "░") if encoding.startswith("utf") else ("#", "-")
        self._drawn = 0.0
        self.last = ""

    def start(self, total: int, kept: int, jobs: int, assignment: str, gpu: bool = False) -> None:
        super().start(total, kept, jobs, assignment, gpu)
        self.draw(force=True)

    def finished(self, outcome: "StudentOutcome") -> None:
        super().finished(outcome)
        self.last = f"{outcome.student} {score_text(outcome.score, outcome.max_score)}"
        if outcome.status == "failed":
            self.last = f"{outcome.student} NOT graded"
        self.draw(force=True)

    def tick(self) -> None:
        self.draw()

    def line(self, width: int) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.done}/{self.total}", f"{clock(elapsed)} elapsed", f"ETA {clock(self.eta())}"]
        if self.failed:
            parts.append(f"{self.failed} NOT graded")
        if self.with_problems:
            parts.append(f"{self.with_problems} with problems")
        if self.kept:
            parts.append(f"{self.kept} kept")
        text = "  ".join(parts)
        if self.last:
            text += f"  last: {self.last}"
        bar_width = max(10, min(30, width - len(text) - 4))
        filled = int(bar_width * self.done / self.total) if self.total else bar_width
        bar = self.fill * filled + self.empty * (bar_width - filled)
        return f"{bar}  {text}"[: max(20, width - 1)]

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < self.REDRAW_S:
            return
        self._drawn = now
        width = shutil.get_terminal_size((100, 24)).columns
        self.stream.write("\r\x1b[2K" + self.line(width))
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r\x1b[2K")
        self.stream.flush()


def for_stream(stream: IO[str] | None, quiet: bool = False, machine: bool = False) -> Progress:
    """A live bar on a terminal, lines elsewhere; nothing when quiet, or when output is for a script
    and nobody watches the terminal."""
    if stream is None or quiet:
        return Progress()
    tty = hasattr(stream, "isatty") and stream.isatty()
    if tty:
        return LiveBar(stream)
    return Progress() if machine else LineLog(stream)


def summary_table(summary: "Summary") -> list[str]:
    """The final table: one row per student, then the totals."""
    rows = [("student", "score", "%", "status", "time", "note")]
    for o in sorted(summary.students, key=lambda o: o.student):
        pct = f"{percent_text(o.score, o.max_score)}%" if o.score is not None and o.max_score else "-"
        status = {"graded": "graded", "kept": "kept", "failed": "NOT graded"}[o.status]
        took = f"{o.execution_time:.1f} s" if o.status == "graded" and o.execution_time is not None else ""
        note = o.error or o.note
        rows.append((o.student, score_text(o.score, o.max_score), pct, status, took, note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3].ljust(widths[3]),
                 r[4].rjust(widths[4]), r[5][:100]]
        out.append("  ".join(cells).rstrip())
    out.append("")
    out.append(summary.totals_line())
    return out
