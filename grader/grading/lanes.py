"""Lanes: one submission's hidden suite split over several sandboxes, for a submission graded alone.

A class run keeps every core busy with one submission per worker. A submission
graded alone (``grader run submissions/alice``, a Gradescope container) would
leave all cores but one idle while its checks run one after another, so its
targets are split into lanes, each graded by its own grading process against its
own sandbox, and the lanes' test results are put together before anything is
scored: points, mistakes and the report are computed once, from all of them.

What a lane holds is closed under ``depends_on``: a network and the blocks it is
built from are judged in one lane, so the network's tests know how its blocks
did (``grader.grading.isolation``). Lanes are balanced by what each target cost
the last time this suite version graded a submission on this machine (kept
beside the reference's cached results), else by its number of rubric items,
networks (targets with a dry-run input) counted four times.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import time
from pathlib import Path
from typing import Any, Callable

from grader.spec import AssignmentSpec

NETWORK_WEIGHT = 4.0


def components(spec: AssignmentSpec) -> list[list[str]]:
    """The targets in groups joined by ``depends_on`` (in either direction), each in the spec's order."""
    names = [t.name for t in spec.targets]
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for t in spec.targets:
        for dep in t.depends_on:
            parent[root(t.name)] = root(dep)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def default_costs(spec: AssignmentSpec) -> dict[str, float]:
    """Without measurements: a target's rubric items, a network's counted ``NETWORK_WEIGHT`` times."""
    items: dict[str, float] = {}
    for r in spec.rubric:
        items[r.target] = items.get(r.target, 0.0) + 1.0
    return {t.name: items.get(t.name, 0.0) * (NETWORK_WEIGHT if t.dry_run_input else 1.0) for t in spec.targets}


def plan(spec: AssignmentSpec, lanes: int, costs: dict[str, float] | None = None) -> list[list[str]]:
    """Split the targets into at most ``lanes`` non-empty lanes of about equal cost.

    The costliest group goes to the least loaded lane, in turn; ties go to the
    group first in the spec and the lane with the lowest number, so the plan
    depends only on the spec and the costs. Costs missing from ``costs`` fall
    back to ``default_costs`` scaled to the measured ones.
    """
    fallback = default_costs(spec)
    if costs:
        known = [t for t in fallback if t in costs and fallback[t] > 0]
        scale = (sum(costs[t] for t in known) / sum(fallback[t] for t in known)) if known else 1.0
        weight = {t: costs.get(t, fallback[t] * scale) for t in fallback}
    else:
        weight = fallback
    groups = components(spec)
    order = sorted(range(len(groups)), key=lambda i: (-sum(weight[t] for t in groups[i]), i))
    loads = [0.0] * max(1, min(lanes, len(groups)))
    plan_: list[list[str]] = [[] for _ in loads]
    for i in order:
        lane = min(range(len(loads)), key=lambda k: (loads[k], k))
        plan_[lane].extend(groups[i])
        loads[lane] += sum(weight[t] for t in groups[i])
    position = {t.name: i for i, t in enumerate(spec.targets)}
    return [sorted(lane, key=position.__getitem__) for lane in plan_ if lane]


# --------------------------------------------------------------------------- what each target cost

def costs_file(cache_file: Path) -> Path:
    return cache_file.with_name(cache_file.name + ".target-costs.json")


def load_costs(path: Path) -> dict[str, float]:
    """Seconds per target from an earlier grading; empty when missing or not plain numbers."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and 0 <= v < 1e6}


def save_costs(path: Path, costs: dict[str, float]) -> None:
    """Written to a temporary name and renamed, so a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: round(v, 4) for k, v in sorted(costs.items())}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # only ever a hint for balancing lanes


# --------------------------------------------------------------------------- running a lane in a forked process

PR_SET_PDEATHSIG = 1


class LaneFailed(Exception):
    """A lane's grading process ended without an answer (killed, or out of time)."""


def start_in_fork(work: Callable[[], Any]) -> tuple[int, int]:
    """Fork; the child runs ``work()`` and sends back its value, pickled (it is this grader's own process, forked
    from this one: it never runs student code, which runs in its sandbox). Returns (pid, read end)."""
    from grader.worker.zygote import _prctl   # the sandbox's own prctl call, imported before the fork

    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; its result is what the tests check
        code = 0
        try:
            os.close(read_end)
            # Ends with the process that forked it, even one killed outright: nobody would read its answer.
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(1)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                payload = pickle.dumps(("ok", work()))
            except BaseException as e:  # noqa: BLE001 - reported to the parent, which grades the lane itself
                payload = pickle.dumps(("error", f"{type(e).__name__}: {e}"))
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view):]
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)   # no finaliser of the parent's objects (its sandboxes, its sessions) runs here
    os.close(write_end)
    return pid, read_end


def collect(pid: int, read_end: int, deadline: float) -> Any:
    """The value ``start_in_fork``'s child sent; ``LaneFailed`` if it ended without one or ran past ``deadline``
    (then it is killed). The child is always reaped."""
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LaneFailed("the lane ran out of time")
            ready, _, _ = select.select([read_end], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        try:
            if chunks and time.monotonic() < deadline:
                os.waitpid(pid, 0)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    try:
        status, value = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - ended mid-write, or never wrote
        raise LaneFailed("the lane's process ended without an answer") from None
    if status != "ok":
        raise LaneFailed(str(value))
    return value
