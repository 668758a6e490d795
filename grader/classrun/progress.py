"""What a person watching a class run sees: a live bar on a terminal, one line per student elsewhere.

Written with plain ANSI (``\\r`` and erase-line) on stderr, so stdout stays for
the summary table or the ``--json`` object.
"""

from __future__ import annotations

import shutil
import time
from typing import IO, TYPE_CHECKING

from grader.classrun.summary import clock, score_text

if TYPE_CHECKING:
    from grader.classrun.summary import StudentOutcome


class Progress:
    """Told about a run as it goes; shows nothing.

    The ETA is estimated when a submission finishes (the mean time between finishes so far, blended with the
    previous estimate so one fast or slow submission does not swing it) and then only counts down while the
    run waits: it never rises between two finishes.
    """

    SMOOTHING = 0.5   # weight of the newest estimate against what was left of the previous one

    def __init__(self) -> None:
        self.clock = time.monotonic

    def start(self, total: int, kept: int, jobs: int, assignment: str, gpu: bool = False) -> None:
        self.total, self.kept, self.jobs, self.assignment, self.gpu = total, kept, jobs, assignment, gpu
        self.done = self.failed = self.with_problems = 0
        self.started = self.clock()
        self.now_grading: list[str] = []
        self._estimate: tuple[float, float] | None = None   # (seconds left, when estimated)

    def finished(self, outcome: "StudentOutcome") -> None:
        self.done += 1
        self.failed += outcome.status == "failed"
        self.with_problems += bool(outcome.problems)
        if outcome.student in self.now_grading:
            self.now_grading.remove(outcome.student)
        now = self.clock()
        left = self.total - self.done
        fresh = (now - self.started) / self.done * left
        previous = self.eta()
        blended = fresh if previous is None else self.SMOOTHING * fresh + (1 - self.SMOOTHING) * previous
        self._estimate = (blended if left > 0 else 0.0, now)

    def running(self, students: list[str]) -> None:
        """The submissions being graded now (in the order they started)."""
        self.now_grading = list(students)

    def tick(self) -> None:
        """Called a few times a second while waiting."""

    def close(self) -> None:
        """The run ended (or was interrupted)."""

    def eta(self) -> float | None:
        """Seconds left, or None before the first submission has finished."""
        if self._estimate is None:
            return None
        left, at = self._estimate
        return max(0.0, left - (self.clock() - at))


class StreamProgress(Progress):
    """Progress written to a stream; a stream whose reader has gone is given up, the run goes on."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream: IO[str] | None = stream

    def write(self, text: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.stream = None


def outcome_text(outcome: "StudentOutcome") -> str:
    if outcome.status == "failed":
        return f"NOT graded: {outcome.error}"
    what = score_text(outcome.score, outcome.max_score)
    return what + (f" ({outcome.problems} problem(s))" if outcome.problems else "")


class LineLog(StreamProgress):
    """One line per finished student: for logs and pipes."""

    def start(self, total: int, kept: int, jobs: int, assignment: str, gpu: bool = False) -> None:
        super().start(total, kept, jobs, assignment, gpu)
        kept_text = f" ({kept} unchanged, kept)" if kept else ""
        device = "the GPU: GPU checks run" if gpu else "no GPU: GPU checks are skipped"
        self.write(f"grading {total} submission(s) of {assignment} with {jobs} worker(s) and {device}{kept_text}\n")

    def finished(self, outcome: "StudentOutcome") -> None:
        super().finished(outcome)
        width = len(str(self.total))
        self.write(f"[{self.done:>{width}}/{self.total}] {outcome.student}: {outcome_text(outcome)}\n")


class LiveBar(StreamProgress):
    """A bar redrawn in place on a terminal: graded/total, elapsed, ETA, who is being graded now, failures.
    With ``verbose``, each finished student is also printed as a line above the bar."""

    REDRAW_S = 0.2

    def __init__(self, stream: IO[str], verbose: bool = False) -> None:
        super().__init__(stream)
        self.verbose = verbose
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
        if self.verbose:
            width = len(str(self.total))
            self.write(f"\r\x1b[2K[{self.done:>{width}}/{self.total}] {outcome.student}: {outcome_text(outcome)}\n")
        self.draw(force=True)

    def running(self, students: list[str]) -> None:
        changed = students != self.now_grading
        super().running(students)
        if changed:
            self.draw(force=True)

    def tick(self) -> None:
        self.draw()

    def line(self, width: int) -> str:
        elapsed = self.clock() - self.started
        parts = [f"{self.done}/{self.total}", f"{clock(elapsed)} elapsed", f"ETA {clock(self.eta())}"]
        if self.failed:
            parts.append(f"{self.failed} NOT graded")
        if self.with_problems:
            parts.append(f"{self.with_problems} with problems")
        if self.kept:
            parts.append(f"{self.kept} kept")
        text = "  ".join(parts)
        bar_width = max(10, min(30, width - len(text) - 4))
        filled = int(bar_width * self.done / self.total) if self.total else bar_width
        head = f"{self.fill * filled}{self.empty * (bar_width - filled)}  {text}"
        room = max(20, width - 1)
        if self.now_grading:
            head += "  now: " + names_within(self.now_grading, room - len(head) - 7)
        elif self.last:
            head += f"  last: {self.last}"
        return head[:room]

    def draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._drawn < self.REDRAW_S:
            return
        self._drawn = now
        width = shutil.get_terminal_size((100, 24)).columns
        self.write("\r\x1b[2K" + self.line(width))

    def close(self) -> None:
        self.write("\r\x1b[2K")


def names_within(names: list[str], room: int) -> str:
    """As many names as fit in ``room`` characters, then how many more there are."""
    shown: list[str] = []
    for i, name in enumerate(names):
        rest = len(names) - i - 1
        candidate = ", ".join([*shown, name]) + (f" +{rest} more" if rest else "")
        if len(candidate) > room and shown:
            return ", ".join(shown) + f" +{len(names) - len(shown)} more"
        shown.append(name)
    return ", ".join(shown)


def for_stream(stream: IO[str] | None, quiet: bool = False, machine: bool = False, verbose: bool = False) -> Progress:
    """A live bar on a terminal, lines elsewhere; nothing when quiet, or when output is for a script
    and nobody watches the terminal."""
    if stream is None or quiet:
        return Progress()
    tty = hasattr(stream, "isatty") and stream.isatty()
    if tty:
        return LiveBar(stream, verbose=verbose)
    return Progress() if machine else LineLog(stream)
