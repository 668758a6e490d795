"""A submission graded alone is split into lanes, each with its own sandbox, and graded as if in one."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from grader.grading import lanes
from grader.grading.engine import GradingSession, SuiteRun
from grader.grading.sandbox import Sandbox, SandboxConfig
from grader.results import Outcome
from grader.results import TestResult as Result
from grader.spec import find_spec

ROOT = Path(__file__).resolve().parents[1]
WRONG = textwrap.dedent('''
    import torch.nn as nn, torch.nn.functional as F
    class SkipBlock(nn.Module):
        """The ReLU after the add, where the lesson has it on the branch."""
        def __init__(self, channels):
            super().__init__()
            self.body = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        def forward(self, x):
            return F.relu(x + self.body(x))
    def double(x):
        print("doubling", x)
        return x * 3
''')


@pytest.fixture(scope="module")
def day09():
    return find_spec("day09")


def test_each_lane_holds_what_its_targets_depend_on(day09) -> None:
    plan = lanes.plan(day09, 2)
    assert len(plan) == 2
    assert sorted(t for lane in plan for t in lane) == sorted(t.name for t in day09.targets)
    for lane in plan:
        for target in lane:
            assert set(day09.dependencies_of(target)) <= set(lane), target
    # ResNet, ModernCNN and the scaled networks all build on ResidualBlock: one lane
    together = next(lane for lane in plan if "ResidualBlock" in lane)
    assert {"ResNet", "resnet18", "ModernCNN", "ScaledResNet", "efficientnet_style"} <= set(together)


def test_lanes_are_balanced_by_what_targets_cost(day09) -> None:
    costs = {t.name: 0.01 for t in day09.targets}
    costs.update(SimplifiedVGG=3.0, ModernCNN=1.0, ResNet=1.0, SimplifiedInception=0.5)
    plan = lanes.plan(day09, 2, costs)
    load = [sum(costs[t] for t in lane) for lane in plan]
    assert "SimplifiedVGG" in plan[0] and "SimplifiedInception" not in plan[0]
    assert max(load) - min(load) < 1.0
    assert plan == lanes.plan(day09, 2, dict(costs))   # depends only on the spec and the costs
    # with nothing measured, networks weigh more than helper functions
    defaults = lanes.default_costs(day09)
    assert defaults["SimplifiedVGG"] > defaults["VGGBlock"] > defaults["round_depth"] > 0


def test_no_more_lanes_than_independent_groups(minispec) -> None:
    assert sorted(lanes.plan(minispec, 8)) == [["SkipBlock"], ["double"]]
    assert lanes.plan(minispec, 1) == [["SkipBlock", "double"]]


def _outcomes(result) -> list[tuple]:  # noqa: ANN001
    return [(t.nodeid, t.outcome, t.score, t.max_score, t.message, t.stdout) for t in result.tests]


@pytest.fixture(scope="module")
def laned(minispec):
    with GradingSession(minispec, lanes=[Sandbox(SandboxConfig.for_spec(minispec))]) as session:
        yield session


def test_a_submission_graded_in_lanes_is_graded_as_in_one(laned, minisession, minispec, make_submission) -> None:
    wrong = make_submission({"blocks.py": WRONG})
    for folder in (minispec.reference, wrong):
        alone, split = minisession.grade(folder, "s"), laned.grade(folder, "s")
        assert _outcomes(split) == _outcomes(alone)
        assert (split.score, split.max_score) == (alone.score, alone.max_score)
        assert [m.model_dump() for m in split.mistakes] == [m.model_dump() for m in alone.mistakes]
        assert split.problems == alone.problems and split.flags == alone.flags
    assert split.score < split.max_score and any(t.outcome is Outcome.failed for t in split.tests)
    assert lanes.load_costs(laned._costs_file).keys() == {"SkipBlock", "double"}


def test_a_lane_that_dies_is_graded_again_and_says_so(laned, minispec, monkeypatch) -> None:
    real = lanes.start_in_fork
    monkeypatch.setattr(lanes, "start_in_fork", lambda work: real(lambda: os._exit(3)))
    result = laned.grade(minispec.reference, "ref")
    assert result.score == result.max_score
    assert any(f.kind == "internal" and "graded again" in f.detail for f in result.flags)


def test_a_lane_past_its_deadline_is_killed_and_reaped() -> None:
    pid, read_end = lanes.start_in_fork(lambda: time.sleep(60))
    started = time.monotonic()
    with pytest.raises(lanes.LaneFailed, match="out of time"):
        lanes.collect(pid, read_end, time.monotonic() + 0.5)
    assert time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_lane_sends_back_its_value_or_its_error() -> None:
    assert lanes.collect(*lanes.start_in_fork(lambda: {"big": b"x" * 3_000_000}), time.monotonic() + 30) == \
        {"big": b"x" * 3_000_000}
    with pytest.raises(lanes.LaneFailed, match="ZeroDivisionError"):
        lanes.collect(*lanes.start_in_fork(lambda: 1 / 0), time.monotonic() + 30)


def test_runs_merge_in_lane_order() -> None:
    def result(nodeid: str) -> Result:
        return Result(name=nodeid, nodeid=nodeid, target="t", category="api", score=0, max_score=0,
                          outcome=Outcome.passed, message="Correct.")

    a = SuiteRun(results=[result("a")], artifacts={"comparison": [{"model": "A"}], "layer_tables": {"A": 1}},
                 broken={"x.py": ("import", "first", "")}, events=[("timeout", "slow", "a")])
    b = SuiteRun(results=[result("b")], artifacts={"comparison": [{"model": "B"}], "layer_tables": {"B": 2}},
                 broken={"x.py": ("import", "second", "")}, events=[("timeout", "slow", "a")],
                 internal_errors=["oops"])
    merged = SuiteRun.merge([a, b])
    assert [r.nodeid for r in merged.results] == ["a", "b"]
    assert merged.artifacts == {"comparison": [{"model": "A"}, {"model": "B"}], "layer_tables": {"A": 1, "B": 2}}
    assert merged.broken == {"x.py": ("import", "first", "")}
    assert merged.events == [("timeout", "slow", "a")] and merged.internal_errors == ["oops"]
    assert a.artifacts["comparison"] == [{"model": "A"}]   # the lanes' own runs are left as they were


def test_a_forked_grading_process_sees_its_lane_sandbox_alive(laned) -> None:
    """A lane's process is forked from the one that started its sandbox: it cannot wait for the zygote, and must
    not take that for the zygote's end (it would start another one for every submission)."""
    box = laned._lane_sandbox(0)

    def seen_alive_from_a_fork() -> bool:
        pid = os.fork()
        if pid == 0:
            os._exit(0 if box.alive() else 1)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

    assert box.alive() and seen_alive_from_a_fork()
    os.kill(box.proc.pid, 9)
    box.proc.wait(timeout=10)
    assert not box.alive() and not seen_alive_from_a_fork()
    assert laned._lane_sandbox(0).alive()   # started again for the next submission


def test_a_submission_graded_alone_gets_one_lane_per_free_core_and_memory_for_it(monkeypatch) -> None:
    from grader.classrun.executors import local

    monkeypatch.delenv(local.ENV_LANES, raising=False)
    monkeypatch.setattr(local, "usable_cores", lambda: 2)
    monkeypatch.setattr(local, "available_memory_mb", lambda: 16_000)
    assert local.lanes_for_one(threads=1, gpu=False) == 2
    monkeypatch.setattr(local, "available_memory_mb", lambda: local.LANE_MEMORY_MB + 100)
    assert local.lanes_for_one(threads=1, gpu=False) == 1   # a second sandbox would not fit in memory
    monkeypatch.setattr(local, "available_memory_mb", lambda: None)
    assert local.lanes_for_one(threads=1, gpu=False) == 2
    assert local.lanes_for_one(threads=2, gpu=False) == 1   # GRADER_THREADS=2 takes both cores
    assert local.lanes_for_one(threads=1, gpu=True) == 1    # one submission holds the GPU whole
    monkeypatch.setattr(local, "usable_cores", lambda: 1)
    assert local.lanes_for_one(threads=1, gpu=False) == 1
    monkeypatch.setenv(local.ENV_LANES, "3")
    assert local.lanes_for_one(threads=1, gpu=False) == 3


@pytest.mark.slow
def test_the_demo_class_graded_in_lanes_is_graded_as_in_one(graded_demo, day09) -> None:
    """bob's four mistakes, carol's unfinished classes and dave's files that do not import: the same tests,
    scores, messages, named mistakes, problems and flags with the suite split over two sandboxes."""
    def seen(result) -> tuple:  # noqa: ANN001
        return ([(t.nodeid, t.outcome, t.score, t.max_score, t.message, t.hint, t.cause, t.stdout) for t in result.tests],
                [m.model_dump() for m in result.mistakes], result.problems, result.flags, result.score)

    with GradingSession(day09, lanes=[Sandbox(SandboxConfig.for_spec(day09))]) as session:
        assert len(lanes.plan(day09, 2, session._target_costs)) == 2
        for student, (alone, folder) in graded_demo.items():
            assert seen(session.grade(ROOT / "submissions" / student)) == seen(alone), student


def test_costs_come_from_a_grading_where_everything_passed_once_per_session(minispec, make_submission,
                                                                           tmp_path) -> None:
    with GradingSession(minispec, cache_folder=tmp_path / "cache") as session:
        session.grade(make_submission({"blocks.py": WRONG}), "wrong")
        assert not session._costs_file.exists()          # a wrong submission stops early where a right one works
        session.grade(minispec.reference, "ref")
        noted = session._costs_file.read_text()
        assert set(lanes.load_costs(session._costs_file)) == {"SkipBlock", "double"}
        session.grade(minispec.reference, "ref")
        assert session._costs_file.read_text() == noted
    with GradingSession(minispec, cache_folder=tmp_path / "cache") as later:
        assert later._target_costs == lanes.load_costs(later._costs_file)   # read by the next session


def test_a_lane_ends_with_the_process_that_forked_it() -> None:
    """A grading process killed outright (SIGKILL, the OOM killer) takes its lanes' processes with it."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            pid, _ = lanes.start_in_fork(lambda: time.sleep(60))
            os.write(write_end, str(pid).encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(write_end)
    lane = int(os.read(read_end, 32))
    os.close(read_end)
    os.kill(middle, 9)
    os.waitpid(middle, 0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists(f"/proc/{lane}") and \
            open(f"/proc/{lane}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.05)
    state = open(f"/proc/{lane}/stat").read().rsplit(")", 1)[1].split()[0] if os.path.exists(f"/proc/{lane}") else "gone"
    assert state in ("Z", "gone"), state
