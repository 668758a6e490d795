"""The progress line a person watching a class run sees on a terminal (a real pseudo-terminal here)."""

from __future__ import annotations

import concurrent.futures as cf
import os
import select
import threading
import time
from pathlib import Path

import pytest

from grader.classrun.executors.registry import register_executor
from grader.classrun.run import grade_class
from grader.classrun.summary import StudentOutcome
from grader.classrun.progress import LiveBar, Progress, for_stream, names_within
from grader.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"


class Pty:
    """A pseudo-terminal: the grader writes to its terminal end, the test reads what a person would see."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.stream = open(self.slave, "w", encoding="utf-8", closefd=False)
        self.seen = b""

    def read(self) -> str:
        while select.select([self.master], [], [], 0.05)[0]:
            self.seen += os.read(self.master, 65536)
        return self.seen.decode("utf-8", "replace")

    def screen(self) -> str:
        """What the last redraw left on the line."""
        return self.read().split("\r\x1b[2K")[-1]

    def close(self) -> None:
        self.stream.close()
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def pty():
    p = Pty()
    yield p
    p.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def graded(student: str) -> StudentOutcome:
    return StudentOutcome(student=student, status="graded", score=8, max_score=10)


def test_a_terminal_gets_the_live_bar(pty):
    assert pty.stream.isatty()
    assert isinstance(for_stream(pty.stream), LiveBar)


def test_the_line_names_who_is_being_graded_now(pty):
    bar = for_stream(pty.stream)
    bar.clock = FakeClock()
    bar.start(total=4, kept=0, jobs=2, assignment="mini")
    assert "0/4" in pty.screen() and "ETA --:--" in pty.screen()
    bar.running(["alice", "bob"])
    assert pty.screen().endswith("now: alice, bob")
    bar.finished(graded("alice"))
    bar.running(["bob", "carol"])
    screen = pty.screen()
    assert "1/4" in screen and screen.endswith("now: bob, carol") and "alice" not in screen
    bar.close()
    assert pty.read().endswith("\r\x1b[2K")


def test_the_eta_counts_down_while_waiting_and_never_rises(pty):
    bar = for_stream(pty.stream)
    clock = bar.clock = FakeClock()
    bar.start(total=5, kept=0, jobs=1, assignment="mini")
    clock.now += 20
    bar.finished(graded("alice"))             # 20 s for one: 80 s for the four left
    assert bar.eta() == pytest.approx(80)
    readings = []
    for _ in range(20):                        # a slow second submission: waiting, the ETA only falls
        clock.now += 5
        bar.tick()
        readings.append(bar.eta())
    assert readings == sorted(readings, reverse=True) and readings[-1] == 0.0
    bar.draw(force=True)
    assert "ETA 0:00" in pty.screen()
    bar.finished(graded("bob"))                # 120 s for two: re-estimated at the finish, blended
    assert bar.eta() == pytest.approx(0.5 * 60 * 3 + 0.5 * 0)


def test_verbose_prints_each_student_above_the_bar(pty):
    bar = for_stream(pty.stream, verbose=True)
    bar.start(total=2, kept=0, jobs=1, assignment="mini")
    bar.finished(graded("alice"))
    assert "[1/2] alice: 8/10\r\n" in pty.read()   # a line of its own (the terminal turns LF into CR LF)


def test_names_that_do_not_fit_are_counted():
    assert names_within(["alice", "bob", "carol"], 40) == "alice, bob, carol"
    assert names_within(["alice", "bob", "carol"], 12) == "alice +2 more"
    assert names_within(["a-very-long-student-name"], 5) == "a-very-long-student-name"


def test_a_closed_progress_stream_does_not_stop_the_run():
    r, w = os.pipe()
    os.close(r)
    stream = open(w, "w", encoding="utf-8")
    log = for_stream(stream)
    log.start(total=1, kept=0, jobs=1, assignment="mini")   # the reader is gone: given up quietly
    log.finished(graded("alice"))
    assert log.done == 1 and log.stream is None
    with pytest.raises(OSError):
        stream.close()


class SlowExecutor:
    """Runs a job in a thread that takes its time, so the run is seen mid-way; no grading at all."""

    def __init__(self, context) -> None:
        self.pool = cf.ThreadPoolExecutor(max_workers=context.workers)
        self.release = threading.Event()

    def submit(self, job):
        def work() -> dict:
            time.sleep(0.6)
            return {"student": job.student, "key": job.key, "score": 5.0, "max_score": 10.0, "tests": 1}

        return self.pool.submit(work)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def test_a_class_run_on_a_terminal_shows_who_is_being_graded(pty, tmp_path):
    register_executor("slow-test", SlowExecutor)
    subs = []
    for name in ("alice", "bob", "carol"):
        (tmp_path / "subs" / name).mkdir(parents=True)
        (tmp_path / "subs" / name / "blocks.py").write_text("x = 1\n")
        subs.append(tmp_path / "subs" / name)
    summary = grade_class(load_spec(MINICOURSE), subs, tmp_path / "out", jobs=2, executor="slow-test",
                          progress=for_stream(pty.stream))
    assert sorted(o.student for o in summary.graded) == ["alice", "bob", "carol"]
    seen = pty.read()
    assert "now: alice, bob" in seen and "now: carol" in seen and "3/3" in seen


def test_progress_without_a_terminal_shows_nothing_to_scripts():
    assert type(for_stream(None)) is Progress
