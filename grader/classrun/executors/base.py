"""What an executor is: told the run's context, it runs ``grade_job`` on jobs somewhere.

In: an ``ExecutorContext`` when the run starts, then jobs (``submit(job) -> Future``).
Out: each job's summary (plain data), or its ``JobError``, through the future.
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from grader.classrun.jobs import Job
from grader.spec import AssignmentSpec


@dataclass(frozen=True)
class ExecutorContext:
    """What an executor is told when a run starts."""

    spec: AssignmentSpec
    suite: str
    workers: int      # submissions to grade at once (already capped by the number of jobs)
    out: Path
    gpu: bool = False  # whether submissions get the GPU (decided before planning: it is part of each key)


class Executor(Protocol):
    """Runs ``grade_job`` on jobs somewhere. ``concurrent.futures`` executors that run ``grade_job``
    (e.g. ``distributed.Client.get_executor()`` wrapped to submit ``grade_job``) fit."""

    def submit(self, job: Job) -> cf.Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


ExecutorFactory = Callable[[ExecutorContext], Executor]


class ExecutorUnavailable(Exception):
    """No executor by that name, or it cannot be loaded here (the message says why)."""
